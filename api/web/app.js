// The status page: the server renders the first paint; this keeps it live (status and
// events every 2 s), draws the last hour as inline SVG, and acts with the operator's token.
//
// The token lives in sessionStorage (this tab only, gone when it closes), never in a cookie
// or a URL, and is sent as the Authorization bearer header, the only place the API reads it.
(() => {
  "use strict";
  const TOKEN_KEY = "gtm-token";
  const SVG = "http://www.w3.org/2000/svg";
  let lastEvent = 0;
  let epoch = 0;
  const events = [];
  let status = null;
  let history = null;
  const pinChoice = {}; // domain -> the pool chosen in its select, kept across refreshes

  const token = () => sessionStorage.getItem(TOKEN_KEY) || "";

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === false || v == null) continue;
      e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? "" : String(k)));
    return e;
  }
  function svg(tag, attrs, ...kids) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    return e;
  }
  const badge = (text, cls) => el("span", { class: "badge " + (cls || "") }, text);
  const ago = (t) => {
    if (!t) return "never";
    const s = Math.max(0, Math.round((Date.now() - Date.parse(t)) / 1000));
    return s < 60 ? s + "s ago" : s < 3600 ? Math.round(s / 60) + "m ago" : Math.round(s / 3600) + "h ago";
  };
  const clock = (t) => new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  // Timed overrides (servers that have them): " until 14:00" for one in force,
  // " · scheduled down 01:00–03:00" for one that starts later.
  const when = (t) => new Date(t).toLocaleString();
  const timed = (o) => {
    let s = o.until ? " until " + when(o.until) : "";
    const w = o.scheduled;
    if (w) s += " · scheduled " + (w.mode || "pin " + w.pool) + " from " + when(w.from) + (w.until ? " until " + when(w.until) : "");
    return s;
  };

  // api calls the admin API: the bearer header when a token is set, never cookies.
  async function api(method, path, body) {
    const headers = {};
    const t = token();
    if (t) headers.Authorization = "Bearer " + t;
    const opts = { method, headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const r = await fetch(path, opts);
    let doc = null;
    try { doc = await r.json(); } catch (_) { /* not JSON */ }
    if (!r.ok) {
      let msg = doc && doc.error ? doc.error : "HTTP " + r.status;
      if (doc && Array.isArray(doc.errors)) msg += ": " + doc.errors.map((e) => e.message).join("; ");
      if (r.status === 401) msg += t ? " (is the token right?)" : " (enter the token above)";
      const err = new Error(msg);
      err.status = r.status;
      throw err;
    }
    return doc;
  }
  const get = (path) => api("GET", path);

  // ---- token ----
  function syncToken() {
    const has = token() !== "";
    document.querySelectorAll("button.act, select.pin-pool").forEach((b) => { b.disabled = !has; });
    document.getElementById("token-forget").disabled = !has;
    const st = document.getElementById("token-state");
    st.textContent = has
      ? "Token set for this tab: actions enabled. It is sent as the bearer header only, and forgotten when the tab closes."
      : "No token: the actions are disabled. The token is kept for this tab only and sent as the bearer header.";
    st.className = has ? "ok" : "muted";
  }
  document.getElementById("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = document.getElementById("token");
    const v = input.value.trim();
    input.value = "";
    if (v) sessionStorage.setItem(TOKEN_KEY, v);
    syncToken();
  });
  document.getElementById("token-forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    syncToken();
  });

  // ---- actions ----
  function say(text, bad) {
    const box = document.getElementById("action-result");
    box.textContent = text;
    box.className = "result " + (bad ? "bad" : "ok");
    box.hidden = false;
  }
  const enc = encodeURIComponent;
  const setMode = (pool, address, mode) =>
    api("PUT", `api/v1/pools/${enc(pool)}/addresses/${enc(address)}/mode`, { mode });

  // A pool-wide mode endpoint is used where the server has one (its pools then report a
  // "mode" in the status); otherwise every address of the pool is set in turn.
  async function setPoolMode(poolName, mode) {
    const p = status && status.pools.find((x) => x.name === poolName);
    if (!p) throw new Error("no pool " + poolName);
    if (typeof p.mode === "string") {
      await api("PUT", `api/v1/pools/${enc(poolName)}/mode`, { mode });
      return `pool ${poolName} set to mode ${mode}`;
    }
    const done = [];
    for (const a of p.addresses) {
      try {
        await setMode(poolName, a.address, mode);
        done.push(a.address);
      } catch (err) {
        throw new Error(`${a.address}: ${err.message}` + (done.length ? ` (already set: ${done.join(", ")})` : ""));
      }
    }
    return `pool ${poolName}: ${done.length} addresses set to mode ${mode} (${done.join(", ")})`;
  }

  async function act(b) {
    const d = b.dataset;
    switch (d.action) {
      case "drain":
        await setMode(d.pool, d.address, "down");
        return `address ${d.address} of pool ${d.pool} drained (mode down)`;
      case "restore":
        await setMode(d.pool, d.address, "auto");
        return `address ${d.address} of pool ${d.pool} restored (mode auto: follows its health checks)`;
      case "drain-pool":
        return setPoolMode(d.pool, "down");
      case "restore-pool":
        return setPoolMode(d.pool, "auto");
      case "pin": {
        const sel = document.querySelector(`select.pin-pool[data-domain="${CSS.escape(d.domain)}"]`);
        const pool = sel ? sel.value : "";
        if (!pool) throw new Error("choose a pool to pin to");
        await api("PUT", `api/v1/domains/${enc(d.domain)}/pin`, { pool });
        return `domain ${d.domain} pinned to pool ${pool}`;
      }
      case "unpin":
        await api("PUT", `api/v1/domains/${enc(d.domain)}/pin`, { pool: "" });
        return `domain ${d.domain} unpinned`;
      case "release-brake":
        await api("POST", "api/v1/brake/release");
        return "brake released: the real verdicts apply";
    }
    throw new Error("unknown action " + d.action);
  }
  document.addEventListener("click", async (e) => {
    const b = e.target.closest("button.act");
    if (!b || b.disabled) return;
    if (!token()) { say("Enter the token first.", true); return; }
    b.disabled = true;
    try {
      say(await act(b), false);
    } catch (err) {
      say("Failed: " + err.message, true);
    } finally {
      b.disabled = !token();
      busy = false; // a refresh in flight may predate the action: ask again
      tick(true);
    }
  });
  document.addEventListener("change", (e) => {
    if (e.target.matches("select.pin-pool")) pinChoice[e.target.dataset.domain] = e.target.value;
  });

  // ---- explain ----
  document.getElementById("explain-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const domain = document.getElementById("ex-domain").value.trim();
    const who = document.getElementById("ex-client").value.trim();
    const type = document.getElementById("ex-type").value;
    const out = document.getElementById("explain-result");
    out.hidden = false;
    const q = new URLSearchParams({ domain, type });
    q.set(who.includes("/") ? "subnet" : "client", who);
    try {
      renderExplain(out, await get("api/v1/explain?" + q));
    } catch (err) {
      out.replaceChildren(el("p", { class: "bad" }, "Explain failed: " + err.message));
    }
  });

  function renderExplain(out, x) {
    const kids = [];
    const answer = x.answer && x.answer.length ? x.answer.join(", ") : "no records";
    kids.push(el("p", { class: "answer" },
      el("b", {}, x.domain + " " + x.type), " asked by ", el("b", {}, x.client), " gets ",
      el("b", { id: "explain-answer" }, answer), ` · ${x.rcode} · TTL ${x.ttl}` + (x.ecs ? ` · ECS scope /${x.scope}` : " · no ECS")));
    const g = x.geo || {};
    let geo;
    if (!g.known) geo = "location unknown (ECS source prefix 0)";
    else if (!g.found) geo = "not in the geo database";
    else geo = [g.continent && "continent " + g.continent, g.country && "country " + g.country, g.region && "region " + g.region,
      g.location && `at ${g.location[0]}, ${g.location[1]}`, g.network && "network " + g.network].filter(Boolean).join(" · ");
    if (g.asn_found) geo += ` · AS${g.asn}` + (g.asn_network ? " (" + g.asn_network + ")" : "");
    kids.push(el("p", { class: "muted" }, "Geo: " + geo));
    for (const s of x.steps || []) {
      const hop = el("div", { class: "hop" });
      let head = s.name + (s.domain !== s.name ? ` (domain ${s.domain})` : "") + " → pool " + (s.pool || "none");
      hop.append(el("h4", {}, head, s.pinned ? badge("pinned to " + s.pinned, "pin") : "",
        s.fail_open ? badge("fail-open", "failopen") : "", s.geo_fenced ? badge("no route matches", "down") : ""));
      if (s.routes && s.routes.length) {
        const rows = s.routes.map((r) => el("tr", { class: r.chosen ? "chosen" : "" },
          el("td", {}, r.chosen ? "▶" : ""), el("td", {}, r.selector), el("td", {}, r.select), el("td", {}, r.pools.join(" → ")),
          el("td", {}, r.matched_by ? "matched by " + r.matched_by : "no match")));
        hop.append(el("table", { class: "small" }, el("thead", {}, el("tr", {}, el("th", {}, ""), el("th", {}, "Route"), el("th", {}, "Select"), el("th", {}, "Pools"), el("th", {}, "Match"))), el("tbody", {}, ...rows)));
      }
      if (s.pools && s.pools.length) {
        hop.append(el("p", {}, "Pools considered: ", ...s.pools.map((p) =>
          badge(`${p.name} ${p.available ? "available" : "unavailable"} (${p.up} up, min ${p.min_available})`, p.available ? "up" : "down"))));
      }
      hop.append(el("p", {}, "Chosen: ", el("b", {}, (s.chosen || []).join(", ") || "—"),
        el("span", { class: "muted" }, s.candidates && s.candidates.length ? " from " + s.candidates.join(", ") : "")));
      if (s.overrides && s.overrides.length) hop.append(el("p", { class: "warn" }, "Overrides that applied: " + s.overrides.join("; ")));
      kids.push(hop);
    }
    out.replaceChildren(...kids);
  }

  // ---- history pictures ----
  const STATE_LABEL = { up: "up", down: "down (health checks fail)", drained: "drained (mode down)", disabled: "disabled" };

  // timeline draws an address's states over the window as colored bars.
  function timeline(a) {
    const W = 240, H = 14;
    const t0 = Date.parse(history.start), t1 = Date.parse(history.time);
    const x = (t) => Math.max(0, Math.min(W, ((t - t0) / (t1 - t0)) * W));
    const s = svg("svg", { class: "tl", viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", preserveAspectRatio: "none" });
    s.append(svg("rect", { class: "seg unknown", x: 0, y: 0, width: W, height: H }));
    const states = a.states || [];
    states.forEach((st, i) => {
      const from = Date.parse(st.at);
      const to = i + 1 < states.length ? Date.parse(states[i + 1].at) : t1;
      const x0 = x(from), w = Math.max(x(to) - x0, 1);
      s.append(svg("rect", { class: "seg " + st.state, x: x0, y: 0, width: w, height: H },
        svg("title", {}, `${STATE_LABEL[st.state] || st.state} from ${clock(from)}`)));
    });
    const now = states.length ? states[states.length - 1].state : "unknown";
    s.setAttribute("aria-label", `last hour: ${states.map((st) => st.state + " from " + clock(st.at)).join(", ")}; now ${now}`);
    s.setAttribute("data-states", states.map((st) => st.state).join(","));
    return s;
  }

  // answersChart draws a pool's answers per minute as bars, the newest at the right.
  function answersChart(p) {
    const W = 420, H = 48, n = p.answers.length, bw = W / n;
    const top = Math.max(1, ...p.answers);
    const total = p.answers.reduce((a, b) => a + b, 0);
    const s = svg("svg", { class: "bars", viewBox: `0 0 ${W} ${H + 12}`, width: W, height: H + 12, role: "img",
      "aria-label": `answers per minute over the last hour: ${total} in all, at most ${top} a minute`, "data-total": total });
    s.append(svg("line", { class: "axis", x1: 0, y1: H + 0.5, x2: W, y2: H + 0.5 }));
    const start = Date.parse(history.start);
    p.answers.forEach((c, i) => {
      if (!c) return;
      const h = Math.max(1, (c / top) * (H - 2));
      s.append(svg("rect", { class: "bar", x: i * bw + 0.5, y: H - h, width: Math.max(bw - 1, 1), height: h },
        svg("title", {}, `${clock(start + i * history.bucket_seconds * 1000)}: ${c} answers`)));
    });
    s.append(svg("text", { class: "lbl", x: 0, y: H + 11 }, "−60 min"));
    s.append(svg("text", { class: "lbl", x: W, y: H + 11, "text-anchor": "end" }, "now"));
    s.append(svg("text", { class: "lbl", x: 2, y: 9 }, `max ${top}/min`));
    return el("div", { class: "chart-row" }, el("span", { class: "muted" }, "Answers, last hour: " + total), s);
  }

  function drawHistory() {
    if (!history) return;
    for (const p of history.pools) {
      const card = document.querySelector(`.pool[data-pool="${CSS.escape(p.name)}"]`);
      if (!card) continue;
      const chart = card.querySelector(".chart");
      if (chart) chart.replaceChildren(answersChart(p));
      for (const a of p.addresses) {
        const cell = card.querySelector(`tr[data-address="${CSS.escape(a.address)}"] td.timeline`);
        if (cell) cell.replaceChildren(timeline(a));
      }
    }
  }

  // ---- status ----
  function render(st) {
    const pools = st.pools;
    const addrs = pools.flatMap((p) => p.addresses);
    const avail = pools.filter((p) => p.available).length;
    const up = addrs.filter((a) => a.up).length;
    const overrides = addrs.filter((a) => a.mode !== "auto").length + st.domains.filter((d) => d.pinned).length;
    document.getElementById("summary").replaceChildren(
      el("span", {}, el("b", {}, st.domains.length), " domains"),
      el("span", { id: "sum-pools" }, el("b", {}, avail + "/" + pools.length), " pools available"),
      el("span", { id: "sum-addrs" }, el("b", {}, up + "/" + addrs.length), " addresses up"),
      el("span", {}, el("b", {}, overrides), " overrides"),
    );

    const att = [];
    const br = st.brake;
    if (br && br.engaged) {
      att.push(el("p", { class: "bad", id: "brake" },
        `Brake engaged${br.fleet ? " (the fleet's)" : ""}: ${br.down} of ${br.of} checked addresses turned down within ${br.window} (more than ${br.percent}%); ${br.held} answered by their verdict from before the wave. `,
        el("button", { class: "act", "data-action": "release-brake" }, "Release the brake")));
    }
    const unavailable = pools.filter((p) => !p.available).map((p) => p.name);
    const failing = st.domains.filter((d) => d.routes.some((r) => r.fail_open)).map((d) => d.name);
    const pinned = st.domains.filter((d) => d.pinned).map((d) => d.name);
    if (unavailable.length) att.push(el("p", { class: "bad" }, "Pools unavailable: " + unavailable.join(", ")));
    if (failing.length) att.push(el("p", { class: "bad" }, "Failing open: " + failing.join(", ")));
    if (pinned.length) att.push(el("p", { class: "warn" }, "Pinned: " + pinned.join(", ")));
    if (st.dangling && st.dangling.length) att.push(el("p", { class: "warn" }, "Leftover overrides not in force: " + st.dangling.join(", ")));
    document.getElementById("attention").replaceChildren(...att);

    const names = pools.map((p) => p.name);
    const rows = [];
    for (const d of st.domains) {
      const pinCell = () => {
        const chosen = pinChoice[d.name] || d.pinned || names[0];
        const sel = el("select", { class: "pin-pool", "data-domain": d.name, "aria-label": "pool to pin " + d.name + " to" },
          ...names.map((n) => el("option", { selected: n === chosen }, n)));
        const td = el("td", {}, sel, " ", el("button", { class: "act", "data-action": "pin", "data-domain": d.name }, "Pin"));
        if (d.pinned) td.append(" ", el("button", { class: "act", "data-action": "unpin", "data-domain": d.name }, "Unpin"));
        return td;
      };
      if (!d.routes.length) rows.push(el("tr", { "data-domain": d.name }, el("td", {}, d.name), el("td", { colspan: 5, class: "muted" }, "no routes")));
      d.routes.forEach((r, i) => {
        const now = el("td", {}, r.current || "—");
        if (d.pinned) now.append(badge("pinned", "pin"));
        if (i === 0 && (d.until || d.scheduled)) now.append(el("span", { class: "muted" }, timed(d)));
        if (r.fail_open) now.append(badge("fail-open", "failopen"));
        if (r.fallback && r.fallback !== "open") now.append(badge("fallback " + r.fallback, "failopen"));
        if (r.held) now.append(badge("held on " + r.held + " (failback " + d.failback + ")", "pin"));
        rows.push(el("tr", { "data-domain": d.name },
          el("td", {}, i === 0 ? d.name : ""), el("td", {}, r.selector), el("td", {}, r.select),
          el("td", {}, r.pools.join(" → ")), now, i === 0 ? pinCell() : el("td")));
      });
    }
    document.querySelector("#domains tbody").replaceChildren(...rows);

    const cards = pools.map((p) => {
      const table = el("table", {}, el("thead", {}, el("tr", {},
        el("th", {}, ""), el("th", {}, "Address"), el("th", {}, "State"), el("th", {}, "Mode"),
        el("th", {}, "RTT"), el("th", {}, "Last probe"), el("th", {}, "Changed"), el("th", {}, "Last hour"), el("th", {}, ""))));
      const body = el("tbody");
      for (const a of p.addresses) {
        const cls = a.disabled ? "off" : !a.up ? "down" : p.healthcheck && !a.checked ? "pending" : "";
        const state = a.disabled ? "disabled" : a.up ? "up" : "down";
        let result = p.healthcheck ? (a.last_result || "pending") + (a.last_error ? ": " + a.last_error : "") : "no health check";
        if (a.quorum) {
          // In a fleet: the verdict is the quorum's; show who says what.
          const votes = (a.votes || []).map((v) => v.node + (v.healthy ? " up" : " down"));
          result += ` · quorum ${a.quorum.down}/${a.quorum.of} down` + (votes.length ? " (" + votes.join(", ") + ")" : "") + (a.local_healthy !== a.healthy ? " · this node sees it " + (a.local_healthy ? "up" : "down") : "");
        }
        if (a.checks && a.checks.length > 1) {
          // Several checks: which of them pass.
          result += " · checks: " + a.checks.map((c) => c.name + (c.healthy ? " ✓" : " ✗")).join(", ");
        }
        // The address's own mode is auto when its mode is auto or comes from its pool's.
        const action = a.mode === "auto" || a.mode_source === "pool"
          ? el("button", { class: "act", "data-action": "drain", "data-pool": p.name, "data-address": a.address }, "Drain")
          : el("button", { class: "act", "data-action": "restore", "data-pool": p.name, "data-address": a.address }, "Restore");
        body.append(el("tr", { "data-address": a.address, "data-state": state },
          el("td", {}, el("span", { class: "dot " + cls })),
          el("td", {}, a.address, a.weight !== 1 ? el("span", { class: "muted" }, " w" + a.weight) : ""),
          el("td", {}, badge(state, state === "up" ? "up" : "down")),
          el("td", {}, a.mode === "auto" ? "auto" : badge(a.mode, "pin"), a.mode_source === "pool" ? " (pool)" : "",
            el("span", { class: "muted" }, timed(a))),
          el("td", { class: "num" }, a.rtt_ms ? a.rtt_ms.toFixed(2) + " ms" : "—"),
          el("td", { class: "muted" }, result),
          el("td", { class: "muted" }, ago(a.last_change)),
          el("td", { class: "timeline" }),
          el("td", {}, action)));
      }
      table.append(body);
      return el("div", { class: "pool", "data-pool": p.name },
        el("h3", {}, el("span", { class: "dot " + (p.available ? "" : "down") }), p.name,
          badge(p.available ? "available" : "unavailable", p.available ? "up" : "down"),
          p.mode && p.mode !== "auto" ? badge("pool mode " + p.mode, "pin") : "",
          p.until || p.scheduled ? el("span", { class: "muted" }, timed(p)) : "",
          el("span", { class: "meta" }, `${p.up}/${p.addresses.length} up · min ${p.min_available} · lb ${p.lb}` + (p.healthcheck ? " · " + (p.healthchecks && p.healthchecks.length > 1 ? p.healthchecks.join(" ") + " require " + p.require : p.healthcheck) : "")),
          el("button", { class: "act", "data-action": "drain-pool", "data-pool": p.name }, "Drain pool"),
          el("button", { class: "act", "data-action": "restore-pool", "data-pool": p.name }, "Restore pool")),
        el("div", { class: "chart", "data-chart": p.name }),
        table);
    });
    document.getElementById("pools").replaceChildren(...cards);
    drawHistory();
    syncToken();
  }

  function renderEvents() {
    const list = document.getElementById("events");
    const items = events.slice(-50).reverse().map((e) =>
      el("li", {}, el("time", {}, new Date(e.time).toLocaleTimeString()), el("span", { class: "kind " + e.kind }, e.kind), el("span", {}, e.message)));
    list.replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "no events yet")]));
  }

  // The latest write attempts through the API (GET /api/v1/audit): who, what, how it ended.
  async function renderAudit() {
    let a;
    try { a = await get("api/v1/audit?limit=20"); } catch (_) { return; }
    const items = (a.records || []).slice().reverse().map((r) =>
      el("li", { "data-audit": String(r.id) }, el("time", {}, new Date(r.time).toLocaleTimeString()),
        el("span", { class: "kind " + (r.status < 400 ? "config" : "failopen") }, String(r.status)),
        el("span", {}, r.token + " " + r.method + " " + r.resource + (r.node ? " on " + r.node : "") + (r.error ? ": " + r.error : ""))));
    document.getElementById("audit").replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "no write through the API yet")]));
  }

  // The fleet, when this node is one of several (GET /api/v1/cluster answers 404 alone).
  async function renderFleet() {
    const section = document.getElementById("fleet-section");
    let c;
    try {
      c = await get("api/v1/cluster");
    } catch (err) {
      if (err.status === 404) section.hidden = true;
      return;
    }
    section.hidden = false;
    const self = [c.node + (c.region ? " (" + c.region + ")" : ""), c.connected ? "connected to etcd" : "NOT connected to etcd: answering with its last configuration", "applied revision " + c.revision];
    if (c.config_error) self.push("config error: " + c.config_error);
    const p = document.getElementById("fleet-self");
    p.textContent = "This node: " + self.join(" · ");
    p.className = c.connected && !c.config_error ? "muted" : "bad";
    const rows = (c.nodes || []).map((n) => el("tr", {},
      el("td", {}, n.name === c.node ? n.name + " (this node)" : n.name), el("td", {}, n.region || ""),
      el("td", {}, n.revision === c.revision ? String(n.revision) : badge(String(n.revision), "warn")),
      el("td", {}, n.version || ""), el("td", {}, ago(n.last_seen))));
    document.querySelector("#fleet tbody").replaceChildren(...rows);
  }

  // The history (a minute's resolution; large with many addresses) is asked for every 10 s,
  // and at once after an action.
  // A refresh that started before a newer one finished is dropped, not drawn over it.
  let busy = false;
  let ticks = 0;
  let started = 0;
  let drawn = 0;
  async function tick(force) {
    if (busy) return;
    busy = true;
    const seq = ++started;
    const banner = document.getElementById("banner");
    try {
      const withHistory = force === true || ticks++ % 5 === 0;
      const [st, ev, hi] = await Promise.all([get("api/v1/status"), get("api/v1/events?since=" + lastEvent),
        withHistory ? get("api/v1/history") : Promise.resolve(history)]);
      if (seq < drawn) return;
      drawn = seq;
      status = st;
      history = hi;
      render(st);
      await renderFleet();
      await renderAudit();
      if (epoch && ev.epoch !== epoch) {
        // The server restarted: its ring is new. Ask again from its start.
        events.push({ id: 0, time: new Date().toISOString(), kind: "restart", message: "the server restarted; events before this are from its previous run" });
        lastEvent = 0;
        ev.events = (await get("api/v1/events?since=0")).events;
      }
      epoch = ev.epoch;
      for (const e of ev.events) { events.push(e); lastEvent = Math.max(lastEvent, e.id); }
      if (events.length > 200) events.splice(0, events.length - 200);
      renderEvents();
      banner.hidden = true;
      document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    } catch (err) {
      banner.textContent = "Cannot reach the admin API: " + err.message;
      banner.hidden = false;
    } finally {
      if (seq === started) busy = false;
    }
  }
  syncToken();
  tick();
  setInterval(tick, 2000);
})();
