{{/* Labels of every object. */}}
{{- define "nodereboot.labels" -}}
app.kubernetes.io/name: nodereboot
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* The image reference. */}}
{{- define "nodereboot.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default (printf "v%s" .Chart.AppVersion) }}
{{- end -}}
{{- end }}

{{/* One flag value as the binaries parse it: lists comma-separated, whole
numbers without exponent. */}}
{{- define "nodereboot.flagValue" -}}
{{- if kindIs "slice" . -}}
{{ join "," . }}
{{- else if or (kindIs "float64" .) (kindIs "float32" .) -}}
{{- if eq (float64 (int64 .)) (float64 .) }}{{ int64 . }}{{ else }}{{ . }}{{ end -}}
{{- else -}}
{{ . }}
{{- end -}}
{{- end }}

{{/* The container args for a map of flags (sorted by name); null, "" and
[] values are left out. A list gives the flag once per item (in order), which
both kinds of list flag take: the comma-separated ones append, and the
repeatable ones (--blocking-pod-selector, --notify-url, whose items may hold
commas) need it. */}}
{{- define "nodereboot.args" -}}
{{- range $name, $value := . }}
{{- if kindIs "slice" $value }}
{{- range $value }}
- {{ printf "--%s=%s" $name (include "nodereboot.flagValue" .) | quote }}
{{- end }}
{{- else if not (or (kindIs "invalid" $value) (and (kindIs "string" $value) (eq $value ""))) }}
- {{ printf "--%s=%s" $name (include "nodereboot.flagValue" $value) | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* The port of a bind address ("[host]:port"), or "" when disabled. */}}
{{- define "nodereboot.port" -}}
{{- if and . (ne (toString .) "0") -}}
{{ regexReplaceAll "^.*:" (toString .) "" }}
{{- end -}}
{{- end }}

{{/* The detector's flags after the chart's own settings. */}}
{{- define "nodereboot.detectorFlags" -}}
{{- $flags := deepCopy .Values.detector.flags -}}
{{- if .Values.nodeProblemDetector.enabled -}}
{{- $_ := set $flags "detection" false -}}
{{- end -}}
{{- toYaml $flags -}}
{{- end }}
