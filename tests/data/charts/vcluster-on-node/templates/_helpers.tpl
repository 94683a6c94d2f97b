{{- define "vcluster.selectorLabels" -}}
app: vcluster
release: {{ .Release.Name }}
{{- end -}}

{{/* What the syncer puts on every object it syncs to the host: the release, and the virtual namespace. */}}
{{- define "vcluster.syncedLabels" -}}
vcluster.loft.sh/managed-by: {{ .Release.Name }}
vcluster.loft.sh/namespace: kube-system
{{- end -}}

{{/* The Deployment of the CoreDNS override, as a dict (empty when there is none). */}}
{{- define "vcluster.corednsDeployment" -}}
{{- $found := dict -}}
{{- range (splitList "\n---\n" (printf "\n%s\n" .Values.controlPlane.coredns.overwriteManifests)) -}}
{{- $doc := fromYaml . -}}
{{- if and $doc (eq (get $doc "kind" | default "") "Deployment") -}}
{{- $found = $doc -}}
{{- end -}}
{{- end -}}
{{- toJson $found -}}
{{- end -}}
