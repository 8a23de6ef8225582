package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// WeightAnnotation on a Service (or one of its EndpointSlices, which wins for its endpoints)
// sets the weight of the members it gives.
const WeightAnnotation = "gtm.coredns.io/weight"

// The Kubernetes resources the sources watch.
const (
	kindServices       = "services"
	kindEndpointSlices = "endpointslices"
	kindIngresses      = "ingresses"
)

// RESTConfig loads the client configuration: file when given, else the in-cluster
// configuration, else $KUBECONFIG.
func RESTConfig(file string) (*rest.Config, error) {
	if file != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", file)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %v", file, err)
		}
		return cfg, nil
	}
	if cfg, err := rest.InClusterConfig(); err == nil {
		return cfg, nil
	}
	env := os.Getenv("KUBECONFIG")
	if env == "" {
		return nil, errors.New("no kubeconfig: not running in a cluster and $KUBECONFIG is not set (set kubeconfig FILE)")
	}
	rules := &clientcmd.ClientConfigLoadingRules{Precedence: filepath.SplitList(env)}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("$KUBECONFIG %s: %v", env, err)
	}
	return cfg, nil
}

// CheckKubeconfig reports whether the client configuration of file ("" for the defaults)
// can be loaded, without connecting.
func CheckKubeconfig(file string) error {
	_, err := RESTConfig(file)
	return err
}

// Factory is one informer factory (client-go's SharedInformerFactory) for one kubeconfig,
// shared by every source that uses that kubeconfig in the process. Its informers watch the
// whole cluster (one watch per resource, however many pools); each source reads its objects
// from the informers' caches. The last Release stops it and waits for its goroutines.
type Factory struct {
	key  string
	cs   kubernetes.Interface
	inf  informers.SharedInformerFactory
	stop chan struct{}

	mu    sync.Mutex
	refs  int
	errs  map[string]string // resource -> the last list/watch error, "" once one succeeded
	subs  map[*kubeSub]bool
	kinds map[string]cache.SharedIndexInformer
}

type kubeSub struct {
	kinds []string
	key   string // "svc/NS/NAME" or "ing/NS/NAME"
	kick  chan struct{}
}

var factories = struct {
	sync.Mutex
	m map[string]*Factory
}{m: map[string]*Factory{}}

// AcquireFactory returns the factory of kubeconfig file ("" for the defaults), making it at
// the first use, with one more reference.
func AcquireFactory(file string) (*Factory, error) {
	key := file
	if abs, err := filepath.Abs(file); err == nil && file != "" {
		key = abs
	}
	factories.Lock()
	defer factories.Unlock()
	if f := factories.m[key]; f != nil {
		f.mu.Lock()
		f.refs++
		f.mu.Unlock()
		return f, nil
	}
	cfg, err := RESTConfig(file)
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = userAgent()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %v", err)
	}
	f := newFactory(key, cs)
	factories.m[key] = f
	return f, nil
}

func newFactory(key string, cs kubernetes.Interface) *Factory {
	return &Factory{
		key: key, cs: cs, refs: 1, stop: make(chan struct{}),
		inf:   informers.NewSharedInformerFactory(cs, 0),
		errs:  map[string]string{},
		subs:  map[*kubeSub]bool{},
		kinds: map[string]cache.SharedIndexInformer{},
	}
}

// Release drops a reference; the last stops the informers and waits for them.
func (f *Factory) Release() {
	factories.Lock()
	f.mu.Lock()
	f.refs--
	last := f.refs == 0
	f.mu.Unlock()
	if last && factories.m[f.key] == f {
		delete(factories.m, f.key)
	}
	factories.Unlock()
	if last {
		close(f.stop)
		f.inf.Shutdown()
	}
}

// Factories counts the running factories (tests: a reload leaves none behind).
func Factories() int {
	factories.Lock()
	defer factories.Unlock()
	return len(factories.m)
}

// informer returns the informer of kind, made and started at its first use. Its list and
// watch calls go through note, so the factory knows when the API server errs and when it
// answers again (the reflector retries with its own backoff).
func (f *Factory) informer(kind string) cache.SharedIndexInformer {
	f.mu.Lock()
	if inf := f.kinds[kind]; inf != nil {
		f.mu.Unlock()
		return inf
	}
	f.mu.Unlock()
	var inf cache.SharedIndexInformer
	switch kind {
	case kindServices:
		inf = f.inf.InformerFor(&corev1.Service{}, func(cs kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
			return f.newInformer(kind, &corev1.Service{}, resync,
				func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
					return cs.CoreV1().Services("").List(ctx, o)
				},
				func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
					return cs.CoreV1().Services("").Watch(ctx, o)
				})
		})
	case kindEndpointSlices:
		inf = f.inf.InformerFor(&discoveryv1.EndpointSlice{}, func(cs kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
			return f.newInformer(kind, &discoveryv1.EndpointSlice{}, resync,
				func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
					return cs.DiscoveryV1().EndpointSlices("").List(ctx, o)
				},
				func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
					return cs.DiscoveryV1().EndpointSlices("").Watch(ctx, o)
				})
		})
	case kindIngresses:
		inf = f.inf.InformerFor(&networkingv1.Ingress{}, func(cs kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
			return f.newInformer(kind, &networkingv1.Ingress{}, resync,
				func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
					return cs.NetworkingV1().Ingresses("").List(ctx, o)
				},
				func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
					return cs.NetworkingV1().Ingresses("").Watch(ctx, o)
				})
		})
	}
	f.mu.Lock()
	if have := f.kinds[kind]; have != nil {
		f.mu.Unlock()
		return have
	}
	f.kinds[kind] = inf
	f.mu.Unlock()
	// Handlers only kick the sources that care (a non-blocking send): they never block
	// the informer's delivery.
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { f.kickKey(objectKey(kind, obj)) },
		UpdateFunc: func(_, obj any) { f.kickKey(objectKey(kind, obj)) },
		DeleteFunc: func(obj any) { f.kickKey(objectKey(kind, obj)) },
	})
	f.inf.Start(f.stop)
	return inf
}

func (f *Factory) newInformer(kind string, obj runtime.Object, resync time.Duration,
	list func(context.Context, metav1.ListOptions) (runtime.Object, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)) cache.SharedIndexInformer {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			out, err := list(ctx, o)
			f.note(ctx, kind, "list", err)
			return out, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			w, err := watchFn(ctx, o)
			f.note(ctx, kind, "watch", err)
			return w, err
		},
	}
	return cache.NewSharedIndexInformer(lw, obj, resync, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
}

// note records the outcome of a list or watch call of kind's informer, and kicks its
// sources when that changes whether it errs.
func (f *Factory) note(ctx context.Context, kind, verb string, err error) {
	msg := ""
	if err != nil {
		if ctx.Err() != nil {
			return // stopping
		}
		msg = kubeError(verb, kind, err)
	}
	f.mu.Lock()
	prev, had := f.errs[kind]
	f.errs[kind] = msg
	var kick []*kubeSub
	if !had || prev != msg {
		for s := range f.subs {
			if slices.Contains(s.kinds, kind) {
				kick = append(kick, s)
			}
		}
	}
	f.mu.Unlock()
	for _, s := range kick {
		poke(s.kick)
	}
}

// kubeError names what failed and how: "list endpointslices: 403 Forbidden: ...".
func kubeError(verb, kind string, err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		st := se.Status()
		return fmt.Sprintf("%s %s: %d %s: %s", verb, kind, st.Code, st.Reason, st.Message)
	}
	return fmt.Sprintf("%s %s: %v", verb, kind, err)
}

// errOf is the first error of kinds, or nil.
func (f *Factory) errOf(kinds []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range kinds {
		if e := f.errs[k]; e != "" {
			return errors.New(e)
		}
	}
	return nil
}

func objectKey(kind string, obj any) string {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	switch o := obj.(type) {
	case *corev1.Service:
		return "svc/" + o.Namespace + "/" + o.Name
	case *discoveryv1.EndpointSlice:
		return "svc/" + o.Namespace + "/" + o.Labels[discoveryv1.LabelServiceName]
	case *networkingv1.Ingress:
		return "ing/" + o.Namespace + "/" + o.Name
	}
	return ""
}

func (f *Factory) kickKey(key string) {
	if key == "" {
		return
	}
	f.mu.Lock()
	var kick []*kubeSub
	for s := range f.subs {
		if s.key == key {
			kick = append(kick, s)
		}
	}
	f.mu.Unlock()
	for _, s := range kick {
		poke(s.kick)
	}
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (f *Factory) subscribe(s *kubeSub) func() {
	f.mu.Lock()
	f.subs[s] = true
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		delete(f.subs, s)
		f.mu.Unlock()
	}
}

// Kubernetes is the source of `members kubernetes NS/SVC` (Mode endpoints or loadbalancer)
// and `members kubernetes ingress NS/NAME` (Mode ingress). It holds a reference on its
// factory, which Run gives back when it ends.
type Kubernetes struct {
	Factory   *Factory
	Namespace string
	Name      string
	Mode      string    // "endpoints", "loadbalancer" or "ingress"
	Resolver  *Resolver // resolves load-balancer host names; nil: resolv.conf
}

func (k *Kubernetes) kinds() []string {
	switch k.Mode {
	case "ingress":
		return []string{kindIngresses}
	case "loadbalancer":
		return []string{kindServices}
	}
	return []string{kindServices, kindEndpointSlices}
}

// Run implements Source.
func (k *Kubernetes) Run(ctx context.Context, report func(Report)) {
	defer k.Factory.Release()
	key := "svc/" + k.Namespace + "/" + k.Name
	if k.Mode == "ingress" {
		key = "ing/" + k.Namespace + "/" + k.Name
	}
	s := &kubeSub{kinds: k.kinds(), key: key, kick: make(chan struct{}, 1)}
	defer k.Factory.subscribe(s)()
	infs := make([]cache.SharedIndexInformer, len(s.kinds))
	synced := make([]cache.InformerSynced, len(s.kinds))
	for i, kind := range s.kinds {
		infs[i] = k.Factory.informer(kind)
		synced[i] = infs[i].HasSynced
	}
	go func() {
		if cache.WaitForCacheSync(ctx.Done(), synced...) {
			poke(s.kick)
		}
	}()
	poke(s.kick)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		if err := k.Factory.errOf(s.kinds); err != nil {
			report(Report{Err: err})
			continue
		}
		ready := true
		for _, fn := range synced {
			ready = ready && fn()
		}
		if !ready {
			continue // the sync, or an error, kicks again
		}
		rep := k.members(ctx, infs)
		if ctx.Err() != nil {
			return
		}
		report(rep)
	}
}

func (k *Kubernetes) members(ctx context.Context, infs []cache.SharedIndexInformer) Report {
	switch k.Mode {
	case "ingress":
		ing, err := networkinglisters.NewIngressLister(infs[0].GetIndexer()).Ingresses(k.Namespace).Get(k.Name)
		if apierrors.IsNotFound(err) {
			return Report{Warning: fmt.Sprintf("Ingress %s/%s does not exist: no members", k.Namespace, k.Name)}
		}
		if err != nil {
			return Report{Err: err}
		}
		var lb []corev1.LoadBalancerIngress
		for _, i := range ing.Status.LoadBalancer.Ingress {
			lb = append(lb, corev1.LoadBalancerIngress{IP: i.IP, Hostname: i.Hostname})
		}
		return k.loadBalancer(ctx, lb, weightOf(ing.Annotations, 1))
	}
	svc, err := corelisters.NewServiceLister(infs[0].GetIndexer()).Services(k.Namespace).Get(k.Name)
	if apierrors.IsNotFound(err) {
		return Report{Warning: fmt.Sprintf("Service %s/%s does not exist: no members", k.Namespace, k.Name)}
	}
	if err != nil {
		return Report{Err: err}
	}
	weight := weightOf(svc.Annotations, 1)
	if k.Mode == "loadbalancer" {
		return k.loadBalancer(ctx, svc.Status.LoadBalancer.Ingress, weight)
	}
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: k.Name})
	slices, err := discoverylisters.NewEndpointSliceLister(infs[1].GetIndexer()).EndpointSlices(k.Namespace).List(sel)
	if err != nil {
		return Report{Err: err}
	}
	var out []Member
	for _, sl := range slices {
		w := weightOf(sl.Annotations, weight)
		for _, ep := range sl.Endpoints {
			// Ready nil means ready (the API's rule); terminating endpoints leave at once.
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready || ep.Conditions.Terminating != nil && *ep.Conditions.Terminating {
				continue
			}
			for _, a := range ep.Addresses {
				if ip, err := netip.ParseAddr(a); err == nil {
					out = append(out, Member{Addr: ip.Unmap(), Weight: w})
				}
			}
		}
	}
	return Report{Members: out}
}

// loadBalancer turns status.loadBalancer.ingress into members, resolving host names.
func (k *Kubernetes) loadBalancer(ctx context.Context, lb []corev1.LoadBalancerIngress, weight int) Report {
	var out []Member
	for _, i := range lb {
		if ip, err := netip.ParseAddr(i.IP); err == nil {
			out = append(out, Member{Addr: ip.Unmap(), Weight: weight})
			continue
		}
		if i.Hostname == "" {
			continue
		}
		r := k.Resolver
		if r == nil {
			var err error
			if r, err = NewResolver(""); err != nil {
				return Report{Err: err}
			}
		}
		addrs, _, err := r.Lookup(ctx, i.Hostname)
		if err != nil {
			return Report{Err: fmt.Errorf("load balancer host name: %v", err)}
		}
		for _, a := range addrs {
			out = append(out, Member{Addr: a, Weight: weight})
		}
	}
	return Report{Members: out}
}

// userAgent names this process to the API server (its audit log): which node of a fleet
// is the one watching.
func userAgent() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("coredns-gtm (%s, pid %d)", host, os.Getpid())
}

// weightOf reads the weight annotation; def when it is absent or not a number 1..1000000.
func weightOf(ann map[string]string, def int) int {
	v, ok := ann[WeightAnnotation]
	if !ok {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 || n > 1_000_000 {
		return def
	}
	return n
}
