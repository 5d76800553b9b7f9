package ingress

import (
	"bytes"
	"fmt"
	"strings"
)

// AnnotationDoc renders docs/ingress-nginx-annotations.md from Annotations.
func AnnotationDoc() []byte {
	var b bytes.Buffer
	count := map[Status]int{}
	for _, a := range Annotations {
		count[a.Status]++
	}
	b.WriteString(`# ingress-nginx annotations

<!-- Generated from internal/controller/ingress/annotations.go by
     go test ./internal/controller/ingress -run TestAnnotationDoc -update; do not edit. -->

Nuncio's Kubernetes controller reads the annotations of
[ingress-nginx](https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/),
so that Ingresses written for it keep working. Every key is read under two prefixes:
` + "`nginx.ingress.kubernetes.io/KEY`" + ` and ` + "`nuncio.dev/KEY`" + `; when both are set the ` + "`nuncio.dev/`" + ` one wins,
which lets an Ingress be tuned for Nuncio while keeping its ingress-nginx form during a migration.

An annotation is never silently ignored: anything but *implemented* produces a Kubernetes Event
on the Ingress (reason ` + "`AnnotationIgnored`, `AnnotationNotEnforced`, `AnnotationRefused`" + ` or
` + "`AnnotationUnknown`" + ` for keys not in this table) and a log line of the controller. A value
that does not parse refuses the Ingress (` + "`TranslationFailed`" + `). A refused Ingress is left out
whole; every other Ingress is still served.

Statuses:

- **implemented**: translated to configuration the data plane enforces.
- **implemented, not enforced by the data plane yet**: translated to Envoy's standard filter
  (named in the notes), which this data plane version does not run yet. The filter is installed
  in the HTTP connection manager as ` + "`is_optional: true, disabled: true`" + ` and enabled per route
  with an optional ` + "`FilterConfig`" + `, so that an Envoy (or a later Nuncio) enforces it and today's
  data plane skips it. Because a configured-but-unenforced security control is worse than a
  refusal, Ingresses using the ones marked **security** (authentication, source ranges, rate
  limits, CORS, client-certificate details, passthrough) are **refused** unless the controller
  runs with ` + "`--allow-unenforced`" + `; the others are served with a warning Event.
- **ignored with a warning**: no effect (the notes say why), with a warning Event.
- **refused**: the Ingress is not served, with an Event saying why.

`)
	fmt.Fprintf(&b, "Of %d annotations: %d implemented, %d implemented but not enforced by the data plane yet, %d ignored with a warning, %d refused.\n\n",
		len(Annotations), count[Implemented], count[NotEnforced], count[Ignored], count[Refused])
	b.WriteString("| Annotation | Status | Notes |\n|---|---|---|\n")
	for _, a := range Annotations {
		status := a.Status.String()
		if a.Status == NotEnforced && a.Security {
			status += " (security: refused without `--allow-unenforced`)"
		}
		notes := strings.ReplaceAll(a.Notes, "|", "\\|")
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", a.Key, status, notes)
	}
	b.WriteString(`
## Global options

The ConfigMap named by ` + "`--configmap NAMESPACE/NAME`" + ` may set these ingress-nginx keys, each the
default of the annotation of the same name: ` + "`" + strings.Join(globalKeys, "`, `") + "`" + `; and
` + "`disable-access-log`" + `. Other keys are reported once, in the controller's log.

## Behaviour that differs from ingress-nginx

- ` + "`ImplementationSpecific`" + ` paths are plain string prefixes, as nginx's ` + "`location /path`" + `
  (` + "`/foo`" + ` matches ` + "`/foobar`" + `); ` + "`Prefix`" + ` paths match whole path segments.
- Regular expressions are RE2 (Go and Envoy), not PCRE: look-around and backreferences refuse the
  Ingress.
- Host wildcards (` + "`*.example.com`" + `) match any depth of subdomain, as Envoy's domains.
- Retries (` + "`proxy-next-upstream`" + `) retry failures where the request was not sent for every
  method; failures after sending (` + "`reset`" + `) only with ` + "`non_idempotent`" + `, since Envoy cannot
  limit retries to idempotent methods.
- The whole-request timeout is off, as in nginx; ` + "`proxy-read-timeout`/`proxy-send-timeout`" + ` set
  the idle timeout between reads and writes.
`)
	return b.Bytes()
}
