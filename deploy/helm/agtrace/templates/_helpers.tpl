{{- define "agtrace.name" -}}agtrace{{- end -}}

{{- define "agtrace.fullname" -}}
{{- if eq .Release.Name "agtrace" -}}agtrace{{- else -}}{{ printf "%s-agtrace" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "agtrace.labels" -}}
app.kubernetes.io/name: agtrace
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "agtrace.selectorLabels" -}}
app.kubernetes.io/name: agtrace
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "agtrace.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "agtrace.fullname" .) .Values.serviceAccount.name }}{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{/* agtrace's configuration file, from the values. */}}
{{- define "agtrace.config" -}}
{{- $c := dict "targets" (dict "select" .Values.selectors) "max_targets" .Values.maxTargets -}}
{{- $_ := set $c "metrics" (dict "listen" (printf "0.0.0.0:%v" .Values.metrics.port)) -}}
{{- $_ := set $c "spool" (dict "dir" "/var/lib/agtrace/spool" "max_bytes" .Values.spool.maxBytes) -}}
{{- $_ := set $c "log" (dict "level" .Values.logging.level "format" .Values.logging.format) -}}
{{- if .Values.output.file }}{{ $_ := set $c "output" (dict "format" "jsonl" "file" .Values.output.file) }}{{ end -}}
{{- if .Values.audit.enabled }}{{ $_ := set $c "audit" "/var/lib/agtrace/audit/audit.log" }}{{ end -}}
{{- if .Values.sampling.rules }}{{ $_ := set $c "sample" .Values.sampling.rules }}{{ end -}}
{{- if .Values.sampling.eventBudget }}{{ $_ := set $c "event_budget" .Values.sampling.eventBudget }}{{ end -}}
{{- with .Values.exporters.elasticsearch }}{{ if .url }}
{{- $es := dict "url" .url "install_template" .installTemplate -}}
{{- if .index }}{{ $_ := set $es "index" .index }}{{ end -}}
{{- if .apiKeySecret }}{{ $_ := set $es "api_key_file" "/etc/agtrace/secrets/es-api-key/api-key" }}{{ end -}}
{{- if .caSecret }}{{ $_ := set $es "ca" "/etc/agtrace/secrets/es-ca/ca.crt" }}{{ end -}}
{{- $_ := set $c "elasticsearch" $es -}}
{{- end }}{{ end -}}
{{- with .Values.exporters.otlp }}{{ if .url }}
{{- $o := dict "url" .url -}}
{{- if .protocol }}{{ $_ := set $o "protocol" .protocol }}{{ end -}}
{{- if .headers }}{{ $_ := set $o "headers" .headers }}{{ end -}}
{{- if .caSecret }}{{ $_ := set $o "ca" "/etc/agtrace/secrets/otlp-ca/ca.crt" }}{{ end -}}
{{- if .clientCertSecret }}
{{- $_ := set $o "client_cert" "/etc/agtrace/secrets/otlp-client/tls.crt" -}}
{{- $_ := set $o "client_key" "/etc/agtrace/secrets/otlp-client/tls.key" -}}
{{- end -}}
{{- $_ := set $c "otlp" $o -}}
{{- end }}{{ end -}}
{{- with .Values.exporters.fluentd }}{{ if .address }}{{ $_ := set $c "fluentd" (dict "address" .address "tag" .tag) }}{{ end }}{{ end -}}
{{- toPrettyJson $c -}}
{{- end -}}
