// Command webhook is authgate's data plane: it answers ingress-nginx, Traefik and Envoy checks and
// serves the login endpoints. Run it with -h for its flags.
package main

import (
	"os"

	"github.com/authgate/authgate/internal/webhook"
)

func main() {
	os.Exit(webhook.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
