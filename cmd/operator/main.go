// Command operator is authgate's control plane: it reports AuthPolicy status, creates and rotates
// signing keys and wires annotated Ingresses. Run it with -h for its flags.
package main

import (
	"os"

	"github.com/authgate/authgate/internal/operator"
)

func main() {
	os.Exit(operator.Main(os.Args[1:], os.Stderr))
}
