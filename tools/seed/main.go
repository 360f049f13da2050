// The seed: the Go program of Gloo's "custom Proxy controller" walkthrough, which proxycontroller
// reimplements, built here only as a baseline for benchmarks/controller_vs_seed.py.
//
// Its logic is left exactly as the walkthrough has it: watch the Upstreams of gloo-system through
// solo-kit's kube client, and for every list the watch delivers build gloo-system/my-cool-proxy with one
// virtual host per upstream (Host header = upstream name, prefix "/" to that upstream) and write it; when
// the Proxy exists, wait one second, read it again and overwrite it with that resourceVersion.
//
// The walkthrough was written against Gloo v1.2.12; this module builds it against Gloo v1.22.1, which needs
// only mechanical changes: kubeutils now lives in github.com/solo-io/k8s-utils, client constructors take the
// context first, KubeResourceClientFactory has no SkipCrdCreation any more (solo-kit no longer creates
// CRDs), Metadata is a pointer, and Metadata.Ref() returns a pointer.
//
// The kubeconfig is found the usual way: $KUBECONFIG (or $KUBERNETES_MASTER_URL), else in-cluster.
package main

import (
	"context"
	"log"
	"os"
	"time"

	v1 "github.com/solo-io/gloo/projects/gloo/pkg/api/v1"
	"github.com/solo-io/gloo/projects/gloo/pkg/api/v1/core/matchers"
	"github.com/solo-io/k8s-utils/kubeutils"
	"github.com/solo-io/solo-kit/pkg/api/v1/clients"
	"github.com/solo-io/solo-kit/pkg/api/v1/clients/factory"
	"github.com/solo-io/solo-kit/pkg/api/v1/clients/kube"
	"github.com/solo-io/solo-kit/pkg/api/v1/resources/core"

	// As in the walkthrough (in client-go v0.35 this is a stub that points at gke-gcloud-auth-plugin).
	_ "k8s.io/client-go/plugin/pkg/client/auth/gcp"
)

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// initGlooClients: one shared informer cache, and a registered solo-kit CRD client each for Upstreams and Proxies.
func initGlooClients(ctx context.Context) (v1.UpstreamClient, v1.ProxyClient) {
	restConfig, err := kubeutils.GetConfig(os.Getenv("KUBERNETES_MASTER_URL"), os.Getenv("KUBECONFIG"))
	must(err)

	cache := kube.NewKubeCache(ctx)

	upstreamClient, err := v1.NewUpstreamClient(ctx, &factory.KubeResourceClientFactory{
		Crd:         v1.UpstreamCrd,
		Cfg:         restConfig,
		SharedCache: cache,
	})
	must(err)
	must(upstreamClient.Register())

	proxyClient, err := v1.NewProxyClient(ctx, &factory.KubeResourceClientFactory{
		Crd:         v1.ProxyCrd,
		Cfg:         restConfig,
		SharedCache: cache,
	})
	must(err)
	must(proxyClient.Register())

	return upstreamClient, proxyClient
}

// makeDesiredProxy: listener "my-amazing-listener" on [::]:8080 with one virtual host per upstream, in the
// order of the list: named after the upstream, matching its name as the Host header, one catch-all route to it.
func makeDesiredProxy(upstreams v1.UpstreamList) *v1.Proxy {
	var virtualHosts []*v1.VirtualHost
	for _, upstream := range upstreams {
		upstreamRef := upstream.GetMetadata().Ref()
		virtualHosts = append(virtualHosts, &v1.VirtualHost{
			Name:    upstream.GetMetadata().GetName(),
			Domains: []string{upstream.GetMetadata().GetName()},
			Routes: []*v1.Route{{
				Matchers: []*matchers.Matcher{{
					PathSpecifier: &matchers.Matcher_Prefix{Prefix: "/"},
				}},
				Action: &v1.Route_RouteAction{
					RouteAction: &v1.RouteAction{
						Destination: &v1.RouteAction_Single{
							Single: &v1.Destination{
								DestinationType: &v1.Destination_Upstream{Upstream: upstreamRef},
							},
						},
					},
				},
			}},
		})
	}

	return &v1.Proxy{
		Metadata: &core.Metadata{Namespace: "gloo-system", Name: "my-cool-proxy"},
		Listeners: []*v1.Listener{{
			Name:        "my-amazing-listener",
			BindAddress: "::",
			BindPort:    8080,
			ListenerType: &v1.Listener_HttpListener{
				HttpListener: &v1.HttpListener{VirtualHosts: virtualHosts},
			},
		}},
	}
}

// resync writes the Proxy for one list of upstreams: a create when there is none yet; otherwise, after a
// second's pause (Gloo may be writing its status into the Proxy meanwhile), a fresh read for the current
// resourceVersion and an overwrite.
func resync(ctx context.Context, upstreams v1.UpstreamList, client v1.ProxyClient) {
	desiredProxy := makeDesiredProxy(upstreams)
	namespace, name := desiredProxy.GetMetadata().GetNamespace(), desiredProxy.GetMetadata().GetName()

	existingProxy, err := client.Read(namespace, name, clients.ReadOpts{Ctx: ctx})
	if err == nil {
		time.Sleep(time.Second)
		existingProxy, err = client.Read(namespace, name, clients.ReadOpts{Ctx: ctx})
		must(err)
		desiredProxy.GetMetadata().ResourceVersion = existingProxy.GetMetadata().GetResourceVersion()
	}

	written, err := client.Write(desiredProxy, clients.WriteOpts{Ctx: ctx, OverwriteExisting: true})
	must(err)
	log.Printf("wrote proxy object: %+v\n", written)
}

func main() {
	ctx := context.Background()
	upstreamClient, proxyClient := initGlooClients(ctx)

	// solo-kit's watch: an initial list, then at most one fresh list per second while the cache saw changes;
	// a list not yet taken is replaced by the newer one.
	upstreamWatch, watchErrors, initError := upstreamClient.Watch("gloo-system", clients.WatchOpts{Ctx: ctx})
	must(initError)

	for {
		select {
		case err := <-watchErrors:
			must(err)
		case newUpstreamList := <-upstreamWatch:
			resync(ctx, newUpstreamList, proxyClient)
		}
	}
}
