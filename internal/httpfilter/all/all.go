// Package all links every built-in HTTP filter into the binary; each registers itself with
// httpfilter.Default from its init function.
package all

import (
	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/apikeyauth"
	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/basicauth"
	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/cors"
	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/csrf"
	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/extauthz"
	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/fault"
	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/jwtauthn"
	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/localratelimit"
	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/rbac"
	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/router"
	_ "github.com/nuncio-gw/nuncio/internal/httpfilter/wasm"
)
