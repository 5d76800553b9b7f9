package xdsgen

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	jwtv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/nuncio-gw/nuncio/internal/controller/ir"
)

const jwtName = "envoy.filters.http.jwt_authn"

// jwksTimeout bounds one fetch of a remote JWKS.
const jwksTimeout = 5 * time.Second

// JWT is one jwt_authn filter per listener with a provider per distinct route policy. The
// filter runs on every route, requiring nothing unless the route names its requirement: so
// the claim headers it sets are stripped from requests on every route, and a client cannot
// forge them towards a backend through a route without authentication.
func init() {
	register(&feature{
		name: "jwt", order: 115,
		httpFilters: func(l *ir.Listener) []*hcmv3.HttpFilter {
			cfg := &jwtv3.JwtAuthentication{Providers: map[string]*jwtv3.JwtProvider{}, RequirementMap: map[string]*jwtv3.JwtRequirement{}}
			l.Routes(func(r *ir.Route) {
				if j := r.JWT; j != nil {
					name := jwtProviderName(j)
					cfg.Providers[name] = jwtProvider(j)
					cfg.RequirementMap[jwtRequirementName(j)] = jwtRequirement(name, j.Optional)
				}
			})
			if len(cfg.Providers) == 0 {
				return nil
			}
			return []*hcmv3.HttpFilter{{Name: jwtName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: typed(cfg)}}}
		},
		route: func(out *routev3.Route, r *ir.Route) {
			if j := r.JWT; j != nil {
				perFilter(out, jwtName, typed(&jwtv3.PerRouteConfig{
					RequirementSpecifier: &jwtv3.PerRouteConfig_RequirementName{RequirementName: jwtRequirementName(j)},
				}))
			}
		},
	})
}

// jwtProviderName names a provider after its settings, so routes with the same policy share
// one provider (and its key and token caches) and the name is stable across translations.
func jwtProviderName(j *ir.JWT) string {
	p := *j
	p.Optional = false
	b, _ := json.Marshal(&p)
	sum := sha256.Sum256(b)
	return "jwt-" + hex.EncodeToString(sum[:6])
}

func jwtRequirementName(j *ir.JWT) string {
	if j.Optional {
		return jwtProviderName(j) + "-optional"
	}
	return jwtProviderName(j)
}

func jwtRequirement(provider string, optional bool) *jwtv3.JwtRequirement {
	req := &jwtv3.JwtRequirement{RequiresType: &jwtv3.JwtRequirement_ProviderName{ProviderName: provider}}
	if !optional {
		return req
	}
	return &jwtv3.JwtRequirement{RequiresType: &jwtv3.JwtRequirement_RequiresAny{RequiresAny: &jwtv3.JwtRequirementOrList{
		Requirements: []*jwtv3.JwtRequirement{req, {RequiresType: &jwtv3.JwtRequirement_AllowMissing{AllowMissing: &emptypb.Empty{}}}},
	}}}
}

func jwtProvider(j *ir.JWT) *jwtv3.JwtProvider {
	p := &jwtv3.JwtProvider{
		Issuer: j.Issuer, Audiences: slices.Clone(j.Audiences), ForwardPayloadHeader: j.PayloadHeader,
	}
	for _, h := range j.ClaimHeaders {
		p.ClaimToHeaders = append(p.ClaimToHeaders, &jwtv3.JwtClaimToHeader{HeaderName: h.Header, ClaimName: h.Claim})
	}
	if j.JWKS != "" {
		p.JwksSourceSpecifier = &jwtv3.JwtProvider_LocalJwks{LocalJwks: inlineString(j.JWKS)}
		return p
	}
	remote := &jwtv3.RemoteJwks{
		HttpUri: &corev3.HttpUri{
			Uri:              j.JWKSURI,
			HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: j.JWKSCluster},
			Timeout:          durationpb.New(jwksTimeout),
		},
		AsyncFetch: &jwtv3.JwksAsyncFetch{},
	}
	if d := j.CacheDuration; d != nil {
		remote.CacheDuration = durationpb.New(d.Duration)
	}
	p.JwksSourceSpecifier = &jwtv3.JwtProvider_RemoteJwks{RemoteJwks: remote}
	return p
}
