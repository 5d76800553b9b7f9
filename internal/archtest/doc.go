// Package archtest holds no code, only a test that keeps the layout of the module honest.
//
// The test lists every package with `go list` and fails when:
//   - internal/model depends on any other package of the module (it is the shared vocabulary;
//     everything may import it, so it may import nothing);
//   - a data-plane runtime package (listener, netfilter, hcm, httpfilter, route, cluster,
//     upstream, codec, wasm) depends on internal/xds or internal/controller: the data plane must
//     run from a snapshot whatever fed it, and the two halves meet only at the xDS wire;
//   - internal/controller depends on a runtime package, for the same reason seen from the
//     other side;
//   - the filter contract (internal/httpfilter itself, not the filters under it), access logs,
//     tracing or the decoders (internal/xds/decode) depend on internal/cluster or
//     internal/upstream: filters see the selected route through an interface, and only the
//     router reaches clusters and connection pools;
//   - a package is named util, utils, common, types, helper or helpers, names that say nothing
//     about what a package provides and grow into hubs that everything imports;
//   - a package has no package comment.
//
// Dependencies are transitive (a package may not reach a forbidden one through a third) and
// count only non-test code. Packages that do not exist yet are simply not listed, and packages
// that do not compile are checked as far as go list can describe them.
package archtest
