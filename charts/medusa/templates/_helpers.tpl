{{/* Names, labels and shared pod fragments of the Medusa store chart. */}}

{{- define "medusa.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object name prefix; left short enough for the "-postgres"/"-setup-<rev>" suffixes. */}}
{{- define "medusa.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "medusa.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that tie an object to its store (docs/CONVENTIONS.md). */}}
{{- define "medusa.storeLabels" -}}
store-orchestrator.io/store-id: {{ required "store.id is required" .Values.store.id | quote }}
store-orchestrator.io/engine: medusa
{{- end }}

{{/* Every object: standard labels + store labels. Call with (dict "ctx" $ "component" "x"). */}}
{{- define "medusa.labels" -}}
helm.sh/chart: {{ include "medusa.chart" .ctx }}
{{ include "medusa.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: store-orchestrator
{{ include "medusa.storeLabels" .ctx }}
{{- end }}

{{/* Immutable subset used in selectors. Call with (dict "ctx" $ "component" "x"). */}}
{{- define "medusa.selectorLabels" -}}
app.kubernetes.io/name: {{ include "medusa.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "medusa.secretName" -}}
{{- required "existingSecret is required: the orchestrator creates it before install" .Values.existingSecret }}
{{- end }}

{{- define "medusa.scheme" -}}
{{- if .Values.ingress.tls.enabled }}https{{ else }}http{{ end }}
{{- end }}

{{- define "medusa.url" -}}
{{ include "medusa.scheme" . }}://{{ required "store.host is required" .Values.store.host }}
{{- end }}

{{- define "medusa.adminEmail" -}}
{{- default (printf "admin@%s" .Values.store.host) .Values.admin.email }}
{{- end }}

{{- define "medusa.serverHost" -}}
{{ include "medusa.fullname" . }}-server
{{- end }}

{{- define "medusa.postgresHost" -}}
{{ include "medusa.fullname" . }}-postgres
{{- end }}

{{- define "medusa.redisHost" -}}
{{ include "medusa.fullname" . }}-redis
{{- end }}

{{- define "medusa.image" -}}
{{ .repository }}:{{ .tag }}
{{- end }}

{{- define "medusa.testImage" -}}
{{- $image := .Values.tests.image -}}
{{- if $image.repository -}}
{{ $image.repository }}:{{ default .Values.medusa.image.tag $image.tag }}
{{- else -}}
{{ include "medusa.image" .Values.medusa.image }}
{{- end }}
{{- end }}

{{/* Pod-level security context shared by every pod (Pod Security "restricted"). */}}
{{- define "medusa.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
{{- if .fsGroup }}
fsGroup: {{ .uid }}
fsGroupChangePolicy: OnRootMismatch
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Where every pod of the store may run (values nodeSelector, tolerations): the same for all of them,
so a store's pods land together, e.g. on a dedicated node pool. Empty when neither is set.
*/}}
{{- define "medusa.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Container-level security context shared by every container. */}}
{{- define "medusa.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Environment of every process that runs Medusa (server, its init container, the setup job).
Passwords come from existingSecret only; the connection URLs are composed by the kubelet
through $(VAR) expansion, so no password ever appears in values or in the rendered manifest.
*/}}
{{- define "medusa.env" -}}
{{- $secret := include "medusa.secretName" . -}}
- name: NODE_ENV
  value: production
- name: MEDUSA_DISABLE_TELEMETRY
  value: "true"
- name: HOME
  value: /tmp
- name: TMPDIR
  value: /tmp
- name: DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: db-password
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: redis-password
# sslmode=disable: Medusa turns SSL on for any database host other than localhost, and the
# official postgres image serves none, so without it migrations cannot connect.
- name: DATABASE_URL
  value: "postgres://{{ .Values.postgres.username }}:$(DB_PASSWORD)@{{ include "medusa.postgresHost" . }}:5432/{{ .Values.postgres.database }}?sslmode=disable"
- name: REDIS_URL
  value: "redis://:$(REDIS_PASSWORD)@{{ include "medusa.redisHost" . }}:6379/0"
- name: JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: jwt-secret
- name: COOKIE_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: cookie-secret
- name: MEDUSA_BACKEND_URL
  value: {{ include "medusa.url" . | quote }}
- name: STORE_CORS
  value: {{ join "," (compact (list (include "medusa.url" .) .Values.medusa.storeCors)) | quote }}
- name: ADMIN_CORS
  value: {{ include "medusa.url" . | quote }}
- name: AUTH_CORS
  value: {{ join "," (compact (list (include "medusa.url" .) .Values.medusa.storeCors)) | quote }}
- name: MEDUSA_UPLOAD_DIR
  value: /app/static
{{- with .Values.medusa.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The setup marker of this revision: "<chart version>/<release revision>". The setup Job writes it after
its migrations, the server's init container waits for it (deploy/images/medusa/setup-store.sh).
*/}}
{{- define "medusa.setupMarker" -}}
{{ .Chart.Version }}/{{ .Release.Revision }}
{{- end }}
