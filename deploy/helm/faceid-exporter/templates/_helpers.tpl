{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "faceid-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's resources. */}}
{{- define "faceid-exporter.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "faceid-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "faceid-exporter.labels" -}}
helm.sh/chart: {{ include "faceid-exporter.chart" . }}
{{ include "faceid-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ include "faceid-exporter.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: faceid-exporter
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that select the pods. */}}
{{- define "faceid-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "faceid-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "faceid-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "faceid-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "faceid-exporter.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "faceid-exporter.image" -}}
{{- $repo := .Values.image.repository }}
{{- if .Values.image.registry }}
{{- $repo = printf "%s/%s" .Values.image.registry .Values.image.repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" $repo (include "faceid-exporter.imageTag" .) .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (include "faceid-exporter.imageTag" .) }}
{{- end }}
{{- end }}

{{/* Name of the Secret with the secret material: existingSecret or the chart's own. */}}
{{- define "faceid-exporter.secretName" -}}
{{- default (include "faceid-exporter.fullname" .) .Values.existingSecret }}
{{- end }}

{{/* Where the secret and config files are mounted in the container. */}}
{{- define "faceid-exporter.secretDir" -}}/etc/faceid-exporter/secrets{{- end }}
{{- define "faceid-exporter.configDir" -}}/etc/faceid-exporter/config{{- end }}

{{/* Whether the exporter gets a web config file. */}}
{{- define "faceid-exporter.webConfigEnabled" -}}
{{- if or .Values.web.tls.enabled .Values.web.basicAuth.enabled .Values.web.config }}true{{- end }}
{{- end }}

{{/*
The Secret keys in use, as a YAML map of key to the value the chart stores when
it creates the Secret. A key whose feature is on but whose value is missing
fails the render, unless existingSecret provides it.
*/}}
{{- define "faceid-exporter.secretItems" -}}
{{- $v := .Values }}
{{- $items := dict }}
{{- $method := $v.nats.auth.method }}
{{- if eq $method "creds" }}{{- $_ := set $items "nats.creds" $v.nats.auth.creds }}{{- end }}
{{- if eq $method "nkey" }}{{- $_ := set $items "nats.nkey" $v.nats.auth.nkeySeed }}{{- end }}
{{- if eq $method "password" }}{{- $_ := set $items "nats-password" $v.nats.auth.password }}{{- end }}
{{- if eq $method "token" }}{{- $_ := set $items "nats-token" $v.nats.auth.token }}{{- end }}
{{- if $v.nats.tls.enabled }}{{- $_ := set $items "nats-ca.crt" $v.nats.tls.ca }}{{- end }}
{{- if $v.nats.tls.clientCert }}
{{- $_ := set $items "nats-tls.crt" $v.nats.tls.cert }}
{{- $_ := set $items "nats-tls.key" $v.nats.tls.key }}
{{- end }}
{{- if $v.web.tls.enabled }}
{{- $_ := set $items "web-tls.crt" $v.web.tls.cert }}
{{- $_ := set $items "web-tls.key" $v.web.tls.key }}
{{- end }}
{{- if include "faceid-exporter.webConfigEnabled" . }}
{{- $_ := set $items "web-config.yml" (include "faceid-exporter.webConfig" .) }}
{{- end }}
{{- if $v.otlp.headers }}
{{- $pairs := list }}
{{- range $k, $val := $v.otlp.headers }}
{{- /* OTEL_EXPORTER_OTLP_HEADERS: comma-separated, values percent-decoded. */}}
{{- $pairs = append $pairs (printf "%s=%s" $k ($val | toString | replace "%" "%25" | replace "," "%2C")) }}
{{- end }}
{{- $_ := set $items "otlp-headers" (join "," $pairs) }}
{{- else if $v.otlp.headersFromSecret }}
{{- $_ := set $items "otlp-headers" "" }}
{{- end }}
{{- toYaml $items }}
{{- end }}

{{/* The exporter-toolkit web config file. */}}
{{- define "faceid-exporter.webConfig" -}}
{{- $cfg := deepCopy (default dict .Values.web.config) }}
{{- if .Values.web.tls.enabled }}
{{- $tls := default dict (get $cfg "tls_server_config") }}
{{- $_ := set $tls "cert_file" (printf "%s/web-tls.crt" (include "faceid-exporter.secretDir" .)) }}
{{- $_ := set $tls "key_file" (printf "%s/web-tls.key" (include "faceid-exporter.secretDir" .)) }}
{{- $_ := set $cfg "tls_server_config" $tls }}
{{- end }}
{{- if .Values.web.basicAuth.enabled }}
{{- if not .Values.existingSecret }}
{{- if not .Values.web.basicAuth.users }}
{{- fail "web.basicAuth.enabled needs web.basicAuth.users (name: bcrypt hash)" }}
{{- end }}
{{- end }}
{{- $_ := set $cfg "basic_auth_users" .Values.web.basicAuth.users }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* The scheme the exporter serves. */}}
{{- define "faceid-exporter.scheme" -}}
{{- if .Values.web.tls.enabled }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}

{{/* A probe's handler and timing; arguments: root context, path, timing values. */}}
{{- define "faceid-exporter.probe" -}}
{{- $root := index . 0 }}
{{- $path := index . 1 }}
{{- $timing := index . 2 }}
{{- if and $root.Values.web.basicAuth.enabled (not $root.Values.probes.httpHeaders) }}
tcpSocket:
  port: http
{{- else }}
httpGet:
  path: {{ $path }}
  port: http
  scheme: {{ include "faceid-exporter.scheme" $root }}
  {{- with $root.Values.probes.httpHeaders }}
  httpHeaders:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{ toYaml $timing }}
{{- end }}

{{/*
The chart's labels merged with more specific ones, which win on a clash;
arguments: root context, then any number of label maps (later ones win).
*/}}
{{- define "faceid-exporter.mergeLabels" -}}
{{- $root := first . }}
{{- $labels := include "faceid-exporter.labels" $root | fromYaml }}
{{- range rest . }}
{{- $labels = mergeOverwrite $labels (default dict .) }}
{{- end }}
{{- /* The selector labels are not for overriding. */}}
{{- $labels = mergeOverwrite $labels (include "faceid-exporter.selectorLabels" $root | fromYaml) }}
{{- toYaml $labels }}
{{- end }}
