{{/* Names, labels and the decisions several templates share. */}}

{{- define "castellan.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "castellan.fullname" -}}
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

{{- define "castellan.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "castellan.selectorLabels" -}}
app.kubernetes.io/name: {{ include "castellan.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "castellan.labels" -}}
helm.sh/chart: {{ include "castellan.chart" . }}
{{ include "castellan.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: castellan
{{- end }}

{{- define "castellan.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "castellan.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Leader election: "true" or "false". null means on exactly when replicas > 1; turning it off
with more than one replica is refused, because two pods would both write status.
*/}}
{{- define "castellan.leaderElect" -}}
{{- $replicas := int .Values.replicas }}
{{- $enabled := .Values.leaderElection.enabled }}
{{- if kindIs "invalid" $enabled }}
{{- if gt $replicas 1 }}true{{ else }}false{{ end }}
{{- else if $enabled }}true
{{- else if gt $replicas 1 }}
{{- fail "leaderElection.enabled=false with replicas > 1 would let two pods write status at once; leave it null or set replicas to 1" }}
{{- else }}false
{{- end }}
{{- end }}

{{- define "castellan.leaseName" -}}
{{- default (include "castellan.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{- define "castellan.leaseNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.leaseNamespace }}
{{- end }}
