// Package envoyconfig reads and writes Envoy v3 configuration as YAML or JSON.
//
// Reading is strict, as Envoy's own loader is: a field the proto does not define is an error
// naming the field's path and, where it can be found, its line, and every typed_config type URL
// that Nuncio understands resolves because the packages defining them are linked in here.
package envoyconfig
