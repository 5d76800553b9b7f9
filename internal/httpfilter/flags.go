package httpfilter

import "strings"

// ResponseFlags are Envoy's response flags: why a response is what it is.
type ResponseFlags uint32

const (
	FlagNoRoute                          ResponseFlags = 1 << iota // NR
	FlagNoHealthyUpstream                                          // UH
	FlagUpstreamConnectFailure                                     // UF
	FlagUpstreamConnectionTermination                              // UC
	FlagUpstreamRequestTimeout                                     // UT
	FlagUpstreamReset                                              // UR
	FlagUpstreamOverflow                                           // UO
	FlagNoClusterFound                                             // NC
	FlagLocalReset                                                 // LR
	FlagDownstreamConnectionTermination                            // DC
	FlagStreamIdleTimeout                                          // SI
	FlagDownstreamProtocolError                                    // DPE
	FlagUpstreamProtocolError                                      // UPE
	FlagDurationTimeout                                            // DT
	FlagUpstreamMaxStreamDurationReached                           // UMSDR
	FlagDelayInjected                                              // DI
	FlagFaultInjected                                              // FI
	FlagRateLimited                                                // RL
	FlagUnauthorizedExternalService                                // UAEX
	FlagUpstreamRetryLimitExceeded                                 // URX
	FlagOverloadManager                                            // OM
	FlagDNSResolutionFailed                                        // DF
	FlagDropOverload                                               // DO
	FlagRBACAccessDenied                                           // RBAC
)

var flagNames = []string{
	"NR", "UH", "UF", "UC", "UT", "UR", "UO", "NC", "LR", "DC", "SI", "DPE", "UPE", "DT", "UMSDR",
	"DI", "FI", "RL", "UAEX", "URX", "OM", "DF", "DO", "RBAC",
}

// AppendTo appends the flags as String renders them, without allocating.
func (f ResponseFlags) AppendTo(b []byte) []byte {
	if f == 0 {
		return append(b, '-')
	}
	first := true
	for i, n := range flagNames {
		if f&(1<<i) != 0 {
			if !first {
				b = append(b, ',')
			}
			b = append(b, n...)
			first = false
		}
	}
	return b
}

// ParseFlag returns the flag with Envoy's short code (as access log filters name them).
func ParseFlag(code string) (ResponseFlags, bool) {
	for i, n := range flagNames {
		if n == code {
			return 1 << i, true
		}
	}
	return 0, false
}

// String renders the flags as Envoy's access log does: short codes joined by commas, "-" when
// there are none.
func (f ResponseFlags) String() string {
	if f == 0 {
		return "-"
	}
	var b strings.Builder
	for i, n := range flagNames {
		if f&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			b.WriteString(n)
		}
	}
	return b.String()
}
