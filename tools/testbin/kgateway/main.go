// Command kgateway-test runs the real kgateway controller (github.com/kgateway-dev/kgateway/v2, its setup package:
// translation, status, xDS server, all of it) outside a cluster, for the Gateway API tests. It is what
// kgateway's own envtest harness (test/envtestutil.RunController) does, as a process: the stock cmd/kgateway
// binds its xDS server to 0.0.0.0:9977, its health probe to :9093 and its metrics to :9092, and a test may
// only listen on loopback. Here the xDS server listens on a Unix socket (the test's Envoy runs in a network
// namespace, as it would in its pod, and reaches the socket through the file system), and the health probe,
// metrics and pprof servers are off (readiness is read from the GatewayClass status), and the admin server (on
// KGW_ADMIN_BIND_ADDRESS, localhost by default) takes its port from --admin-port instead of 9095, which Gloo's
// admin server also uses. Everything else is kgateway's defaults and its KGW_* environment variables.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/kgateway-dev/kgateway/v2/pkg/kgateway/setup"
	"github.com/kgateway-dev/kgateway/v2/pkg/kgateway/wellknown"
	"github.com/kgateway-dev/kgateway/v2/pkg/version"
)

func main() {
	// A flag set of our own: controller-runtime registers --kubeconfig on the global one.
	flags := flag.NewFlagSet("kgateway-test", flag.ExitOnError)
	kubeconfig := flags.String("kubeconfig", "", "kubeconfig of the API server to run against (required)")
	xdsSocket := flags.String("xds-socket", "", "Unix socket path for kgateway's xDS server (required)")
	adminPort := flags.Uint("admin-port", uint(wellknown.KgatewayAdminPort), "port of kgateway's admin server (/snapshots/...)")
	printVersion := flags.Bool("version", false, "print kgateway's version and exit")
	_ = flags.Parse(os.Args[1:])
	if *printVersion {
		fmt.Println(version.String())
		return
	}
	if *kubeconfig == "" || *xdsSocket == "" {
		fmt.Fprintln(os.Stderr, "usage: kgateway-test --kubeconfig FILE --xds-socket PATH")
		os.Exit(2)
	}
	wellknown.KgatewayAdminPort = uint32(*adminPort) //nolint:gosec // a port number
	if err := run(*kubeconfig, *xdsSocket); err != nil {
		fmt.Fprintln(os.Stderr, "kgateway-test:", err)
		os.Exit(1)
	}
}

func run(kubeconfig, xdsSocket string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	restConfig, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("reading %s: %w", kubeconfig, err)
	}
	// A socket left by a killed earlier run would make Listen fail.
	if err := os.Remove(xdsSocket); err != nil && !os.IsNotExist(err) {
		return err
	}
	listener, err := net.Listen("unix", xdsSocket)
	if err != nil {
		return err
	}
	defer listener.Close()

	server, err := setup.New(
		setup.WithRestConfig(restConfig),
		setup.WithXDSListener(listener),
		setup.WithControllerManagerOptions(func(ctx context.Context) *ctrl.Options {
			return &ctrl.Options{
				BaseContext:            func() context.Context { return ctx },
				Scheme:                 runtime.NewScheme(),
				PprofBindAddress:       "0",
				HealthProbeBindAddress: "0",
				Metrics:                metricsserver.Options{BindAddress: "0"},
				// One replica per test: nothing to elect.
				LeaderElection: false,
			}
		}),
	)
	if err != nil {
		return err
	}
	return server.Start(ctx)
}
