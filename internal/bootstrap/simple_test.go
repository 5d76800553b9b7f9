package bootstrap_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nuncio-gw/nuncio/internal/envoyconfig"
	"github.com/nuncio-gw/nuncio/internal/httpfilter"
	"github.com/nuncio-gw/nuncio/internal/xds/decode"
)

// TestSimpleTranslationsDecode holds the two halves of the simple format to each other: every
// bootstrap the simple translator's golden files show must be inside the decoder's subset.
// Certificate files named there do not exist on this machine, so only that error is tolerated.
func TestSimpleTranslationsDecode(t *testing.T) {
	files, err := filepath.Glob("../controller/simple/testdata/*.out.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Skip("no simple translator golden files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(string(data), "#") {
				t.Skip("an expected-error case")
			}
			b, err := envoyconfig.UnmarshalBootstrap(data)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := decode.Bootstrap(b, httpfilter.Default); err != nil && !strings.Contains(err.Error(), "no such file or directory") {
				t.Fatal(err)
			}
		})
	}
}
