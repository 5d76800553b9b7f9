package admin

import (
	"reflect"
	"testing"
)

func TestExtractTags(t *testing.T) {
	tests := []struct {
		name     string
		stat     string
		wantName string
		wantTags []tag
	}{
		{
			name: "cluster name", stat: "cluster.backend.upstream_rq_total",
			wantName: "cluster.upstream_rq_total",
			wantTags: []tag{{"envoy.cluster_name", "backend"}},
		},
		{
			name: "cluster response code", stat: "cluster.backend.upstream_rq_503",
			wantName: "cluster.upstream_rq",
			wantTags: []tag{{"envoy.response_code", "503"}, {"envoy.cluster_name", "backend"}},
		},
		{
			name: "cluster response code class", stat: "cluster.backend.upstream_rq_5xx",
			wantName: "cluster.upstream_rq_xx",
			wantTags: []tag{{"envoy.response_code_class", "5"}, {"envoy.cluster_name", "backend"}},
		},
		{
			name: "connection manager response code class", stat: "http.ingress_http.downstream_rq_2xx",
			wantName: "http.downstream_rq_xx",
			wantTags: []tag{{"envoy.response_code_class", "2"}, {"envoy.http_conn_manager_prefix", "ingress_http"}},
		},
		{
			name: "connection manager total", stat: "http.ingress_http.downstream_rq_total",
			wantName: "http.downstream_rq_total",
			wantTags: []tag{{"envoy.http_conn_manager_prefix", "ingress_http"}},
		},
		{
			name: "connection manager histogram", stat: "http.ingress_http.downstream_rq_time",
			wantName: "http.downstream_rq_time",
			wantTags: []tag{{"envoy.http_conn_manager_prefix", "ingress_http"}},
		},
		{
			name: "listener IPv4 address", stat: "listener.0.0.0.0_8080.downstream_cx_total",
			wantName: "listener.downstream_cx_total",
			wantTags: []tag{{"envoy.listener_address", "0.0.0.0_8080"}},
		},
		{
			name: "listener IPv6 address", stat: "listener.[__1]_8443.downstream_cx_active",
			wantName: "listener.downstream_cx_active",
			wantTags: []tag{{"envoy.listener_address", "[__1]_8443"}},
		},
		{
			name: "listener stat prefix", stat: "listener.public.downstream_cx_total",
			wantName: "listener.downstream_cx_total",
			wantTags: []tag{{"envoy.listener_address", "public"}},
		},
		{
			name: "admin listener is not tagged", stat: "listener.admin.downstream_cx_total",
			wantName: "listener.admin.downstream_cx_total",
		},
		{
			name: "per-listener connection manager stats", stat: "listener.127.0.0.1_10000.http.ingress.downstream_rq_5xx",
			wantName: "listener.http.downstream_rq_xx",
			wantTags: []tag{
				{"envoy.response_code_class", "5"},
				{"envoy.http_conn_manager_prefix", "ingress"},
				{"envoy.listener_address", "127.0.0.1_10000"},
			},
		},
		{
			name: "virtual host and virtual cluster", stat: "vhost.api.vcluster.slow.upstream_rq_total",
			wantName: "vhost.vcluster.upstream_rq_total",
			wantTags: []tag{{"envoy.virtual_cluster", "slow"}, {"envoy.virtual_host", "api"}},
		},
		{
			name: "virtual host response code", stat: "vhost.api.vcluster.other.upstream_rq_404",
			wantName: "vhost.vcluster.upstream_rq",
			wantTags: []tag{{"envoy.response_code", "404"}, {"envoy.virtual_cluster", "other"}, {"envoy.virtual_host", "api"}},
		},
		{
			name: "rds route config with dots", stat: "http.ingress.rds.my.routes.update_success",
			wantName: "http.rds.update_success",
			wantTags: []tag{{"envoy.http_conn_manager_prefix", "ingress"}, {"envoy.rds_route_config", "my.routes"}},
		},
		{
			name: "tcp proxy prefix", stat: "tcp.db.downstream_cx_total",
			wantName: "tcp.downstream_cx_total",
			wantTags: []tag{{"envoy.tcp_prefix", "db"}},
		},
		{
			name: "cluster ssl cipher", stat: "cluster.backend.ssl.ciphers.ECDHE-RSA-AES128-GCM-SHA256",
			wantName: "cluster.ssl.ciphers",
			wantTags: []tag{{"envoy.ssl_cipher_suite", "ECDHE-RSA-AES128-GCM-SHA256"}, {"envoy.cluster_name", "backend"}},
		},
		{
			name: "untagged server stat", stat: "server.live",
			wantName: "server.live",
		},
		{
			name: "response code needs three digits", stat: "cluster.x.upstream_rq_50",
			wantName: "cluster.upstream_rq_50",
			wantTags: []tag{{"envoy.cluster_name", "x"}},
		},
		{
			name: "a bare prefix is not a tag", stat: "cluster.x",
			wantName: "cluster.x",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, tags := extractTags(tc.stat, defaultExtractors)
			if got != tc.wantName {
				t.Errorf("name %q, want %q", got, tc.wantName)
			}
			if !reflect.DeepEqual(tags, tc.wantTags) {
				t.Errorf("tags %v, want %v", tags, tc.wantTags)
			}
		})
	}
}

func TestPrometheusName(t *testing.T) {
	tests := []struct {
		name, stat, wantName, wantLabels string
	}{
		{name: "cluster", stat: "cluster.x.upstream_rq_total", wantName: "envoy_cluster_upstream_rq_total", wantLabels: `envoy_cluster_name="x"`},
		{name: "code class", stat: "http.in.downstream_rq_2xx", wantName: "envoy_http_downstream_rq_xx", wantLabels: `envoy_response_code_class="2",envoy_http_conn_manager_prefix="in"`},
		{name: "code", stat: "cluster.x.upstream_rq_503", wantName: "envoy_cluster_upstream_rq", wantLabels: `envoy_response_code="503",envoy_cluster_name="x"`},
		{name: "cluster names keep their characters", stat: "cluster.svc-a:80.upstream_rq_total", wantName: "envoy_cluster_upstream_rq_total", wantLabels: `envoy_cluster_name="svc-a:80"`},
		{name: "untagged names are sanitized", stat: "nuncio.config.update-success", wantName: "envoy_nuncio_config_update_success"},
		{name: "quotes in values are escaped", stat: `cluster.a"b.upstream_rq_total`, wantName: "envoy_cluster_upstream_rq_total", wantLabels: `envoy_cluster_name="a\"b"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := prometheusName(tc.stat)
			if p.name != tc.wantName || p.labels != tc.wantLabels {
				t.Errorf("got %s{%s}, want %s{%s}", p.name, p.labels, tc.wantName, tc.wantLabels)
			}
		})
	}
}
