// Command schemagen writes the simple config's JSON Schema to the file named by its argument;
// go generate runs it in api/v1alpha1.
package main

import (
	"fmt"
	"os"

	"github.com/nuncio-gw/nuncio/api/v1alpha1"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: schemagen OUTPUT")
		os.Exit(2)
	}
	b, err := v1alpha1.Schema()
	if err == nil {
		err = os.WriteFile(os.Args[1], b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
}
