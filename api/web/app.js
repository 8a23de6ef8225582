// coredns-gtm status page: polls the admin API and renders it. No dependencies.
"use strict";
(function () {
  let lastEvent = 0;
  let epoch = 0; // the server process's event epoch: a new one means it restarted
  const events = [];

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k == null ? "" : String(k)));
    return e;
  }
  const badge = (text, cls) => el("span", { class: "badge " + (cls || "") }, text);
  const ago = (t) => {
    if (!t) return "never";
    const s = Math.max(0, Math.round((Date.now() - Date.parse(t)) / 1000));
    return s < 60 ? s + "s ago" : s < 3600 ? Math.round(s / 60) + "m ago" : Math.round(s / 3600) + "h ago";
  };

  // Timed overrides: " until 14:00" for one in force, " · scheduled down 01:00–03:00" for one
  // that starts later.
  const clock = (t) => new Date(t).toLocaleString();
  const timed = (o) => {
    let s = o.until ? " until " + clock(o.until) : "";
    const w = o.scheduled;
    if (w) s += " · scheduled " + (w.mode || "pin " + w.pool) + " from " + clock(w.from) + (w.until ? " until " + clock(w.until) : "");
    return s;
  };

  async function get(path) {
    const r = await fetch(path, { cache: "no-store" });
    if (r.status === 401) throw new Error("unauthorized: the API needs a bearer token (configure public_read, or a proxy that adds it)");
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    return r.json();
  }

  function render(st) {
    const pools = st.pools;
    const addrs = pools.flatMap((p) => p.addresses);
    const avail = pools.filter((p) => p.available).length;
    const up = addrs.filter((a) => a.up).length;
    const overrides = addrs.filter((a) => a.mode !== "auto").length + st.domains.filter((d) => d.pinned).length;
    const sum = document.getElementById("summary");
    sum.replaceChildren(
      el("span", {}, el("b", {}, st.domains.length), " domains"),
      el("span", { id: "sum-pools" }, el("b", {}, avail + "/" + pools.length), " pools available"),
      el("span", { id: "sum-addrs" }, el("b", {}, up + "/" + addrs.length), " addresses up"),
      el("span", {}, el("b", {}, overrides), " overrides"),
    );

    const tbody = document.querySelector("#domains tbody");
    const rows = [];
    for (const d of st.domains) {
      d.routes.forEach((r, i) => {
        const now = el("td", {}, r.current || "—");
        if (d.pinned) now.append(badge("pinned", "pin"));
        if (i === 0 && (d.until || d.scheduled)) now.append(el("span", { class: "muted" }, timed(d)));
        if (r.fail_open) now.append(badge("fail-open", "failopen"));
        if (r.fallback && r.fallback !== "open") now.append(badge("fallback " + r.fallback, "failopen"));
        if (r.held) now.append(badge("held on " + r.held + " (failback " + d.failback + ")", "pin"));
        rows.push(el("tr", { "data-domain": d.name },
          el("td", {}, i === 0 ? d.name : ""), el("td", {}, r.selector), el("td", {}, r.select),
          el("td", {}, r.pools.join(" → ")), now));
      });
    }
    tbody.replaceChildren(...rows);

    const cards = pools.map((p) => {
      const table = el("table", {}, el("thead", {}, el("tr", {},
        el("th", {}, ""), el("th", {}, "Address"), el("th", {}, "State"), el("th", {}, "Mode"),
        el("th", {}, "RTT"), el("th", {}, "Last probe"), el("th", {}, "Changed"))));
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
        body.append(el("tr", { "data-address": a.address, "data-state": state },
          el("td", {}, el("span", { class: "dot " + cls })),
          el("td", {}, a.address, a.weight !== 1 ? el("span", { class: "muted" }, " w" + a.weight) : ""),
          el("td", {}, badge(state, state === "up" ? "up" : "down")),
          el("td", {}, a.mode === "auto" ? "auto" : badge(a.mode, "pin"), a.mode_source === "pool" ? " (pool)" : "",
            el("span", { class: "muted" }, timed(a))),
          el("td", { class: "num" }, a.rtt_ms ? a.rtt_ms.toFixed(2) + " ms" : "—"),
          el("td", { class: "muted" }, result),
          el("td", { class: "muted" }, ago(a.last_change))));
      }
      table.append(body);
      return el("div", { class: "pool", "data-pool": p.name },
        el("h3", {}, el("span", { class: "dot " + (p.available ? "" : "down") }), p.name,
          badge(p.available ? "available" : "unavailable", p.available ? "up" : "down"),
          p.mode && p.mode !== "auto" ? badge("pool mode " + p.mode, "pin") : "",
          p.until || p.scheduled ? el("span", { class: "muted" }, timed(p)) : "",
          el("span", { class: "meta" }, `${p.up}/${p.addresses.length} up · min ${p.min_available} · lb ${p.lb}` + (p.healthcheck ? " · " + (p.healthchecks && p.healthchecks.length > 1 ? p.healthchecks.join(" ") + " require " + p.require : p.healthcheck) : ""))),
        table);
    });
    document.getElementById("pools").replaceChildren(...cards);
  }

  function renderEvents() {
    const list = document.getElementById("events");
    const items = events.slice(-50).reverse().map((e) =>
      el("li", {}, el("time", {}, new Date(e.time).toLocaleTimeString()), el("span", { class: "kind " + e.kind }, e.kind), el("span", {}, e.message)));
    list.replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "no events yet")]));
  }

  // The fleet, when this node is one of several (GET /api/v1/cluster answers 404 alone).
  async function renderFleet() {
    const r = await fetch("api/v1/cluster", { cache: "no-store" });
    const section = document.getElementById("fleet-section");
    if (r.status === 404) { section.hidden = true; return; }
    if (!r.ok) return;
    const c = await r.json();
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

  async function tick() {
    const banner = document.getElementById("banner");
    try {
      const [st, ev] = await Promise.all([get("api/v1/status"), get("api/v1/events?since=" + lastEvent)]);
      render(st);
      await renderFleet();
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
    }
  }
  tick();
  setInterval(tick, 2000);
})();
