{{/* Chart name, or nameOverride; 63 characters at most (DNS label). */}}
{{- define "ntp-monitor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects: fullnameOverride, else the release name when it already
contains the chart name, else "<release>-<chart>". The StatefulSet's pods are "<fullname>-N",
and N is their shard (--shard-from-hostname); 52 characters leave room for the ordinal and
the controller-revision-hash label.
*/}}
{{- define "ntp-monitor.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ntp-monitor.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{- define "ntp-monitor.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "ntp-monitor.labels" -}}
helm.sh/chart: {{ include "ntp-monitor.chart" . }}
{{ include "ntp-monitor.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ntp-monitor
{{- end }}

{{/* The pods' labels that the StatefulSet, the Services and the PodDisruptionBudget select. */}}
{{- define "ntp-monitor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ntp-monitor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ntp-monitor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ntp-monitor.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The headless Service: the StatefulSet's serviceName, one DNS name per pod. */}}
{{- define "ntp-monitor.headlessName" -}}
{{- printf "%s-headless" (include "ntp-monitor.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ntp-monitor.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
A file of the chart that must not be empty: files/ holds symbolic links to deploy/prometheus
and deploy/grafana, which helm follows (and `helm package` stores as the files they point to).
A copy of the chart directory that lost them fails here instead of rendering empty objects.
*/}}
{{- define "ntp-monitor.requiredFile" -}}
{{- $content := .root.Files.Get .path }}
{{- if not $content }}
{{- fail (printf "%s is missing or empty: it is a symbolic link into deploy/ (docs/deploy.md, Helm chart)" .path) }}
{{- end }}
{{- $content }}
{{- end }}
