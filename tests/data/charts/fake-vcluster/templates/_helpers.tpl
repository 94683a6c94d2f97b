{{/* The real chart's controlPlane.statefulSet section, or an empty dict. */}}
{{- define "vcluster.sts" -}}
{{- dig "controlPlane" "statefulSet" (dict) .Values.AsMap | toJson -}}
{{- end -}}

{{- define "vcluster.selectorLabels" -}}
app: vcluster
release: {{ .Release.Name }}
{{- end -}}

{{- define "vcluster.labels" -}}
{{ include "vcluster.selectorLabels" . }}
app.kubernetes.io/name: vcluster
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Flat value if given, else the real chart's, else the default: (list . "flatKey" (list "path" "in" "sts") default) */}}
{{- define "vcluster.pick" -}}
{{- $ctx := index . 0 -}}
{{- $flat := index . 1 -}}
{{- $path := index . 2 -}}
{{- $def := index . 3 -}}
{{- $sts := include "vcluster.sts" $ctx | fromJson -}}
{{- $v := $def -}}
{{- $cur := $sts -}}
{{- $found := true -}}
{{- range $path -}}
{{- if and $found (kindIs "map" $cur) (hasKey $cur .) -}}
{{- $cur = index $cur . -}}
{{- else -}}
{{- $found = false -}}
{{- end -}}
{{- end -}}
{{- if and $found (not (kindIs "invalid" $cur)) -}}
{{- $v = $cur -}}
{{- end -}}
{{- if and (hasKey $ctx.Values $flat) (not (kindIs "invalid" (index $ctx.Values $flat))) -}}
{{- $v = index $ctx.Values $flat -}}
{{- end -}}
{{- toJson (dict "v" $v) -}}
{{- end -}}
