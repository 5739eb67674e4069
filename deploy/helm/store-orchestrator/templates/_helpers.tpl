{{/* Names, labels and the pieces every pod of the release shares. */}}

{{- define "store-orchestrator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every resource; cluster-scoped names (ClusterRoles, the admission policy) use it too,
so two releases in one cluster do not collide. */}}
{{- define "store-orchestrator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "store-orchestrator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels: call with (dict "ctx" $ "component" "web"). */}}
{{- define "store-orchestrator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "store-orchestrator.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{- define "store-orchestrator.labels" -}}
helm.sh/chart: {{ include "store-orchestrator.chart" .ctx }}
{{ include "store-orchestrator.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: store-orchestrator
{{- end -}}

{{- define "store-orchestrator.serviceAccountName" -}}
{{- default (include "store-orchestrator.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The ClusterRole the orchestrator binds in each store namespace (STORE_NAMESPACE_CLUSTERROLE). */}}
{{- define "store-orchestrator.storeClusterRoleName" -}}
{{- printf "%s-store-admin" (include "store-orchestrator.fullname" .) -}}
{{- end -}}

{{/* The web process's own identity: it may only read store credentials Secrets (WEB_SERVICE_ACCOUNT). */}}
{{- define "store-orchestrator.webServiceAccountName" -}}
{{- printf "%s-web" (include "store-orchestrator.serviceAccountName" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The ClusterRole the orchestrator binds to web in each store namespace (STORE_CREDENTIALS_CLUSTERROLE). */}}
{{- define "store-orchestrator.credentialsClusterRoleName" -}}
{{- printf "%s-store-credentials" (include "store-orchestrator.fullname" .) -}}
{{- end -}}

{{/* The value of the store-orchestrator.io/installation label on this installation's store namespaces
(ORCHESTRATOR_INSTALLATION_ID): installationId, or "<release namespace>.<release name>". */}}
{{- define "store-orchestrator.installationId" -}}
{{- default (printf "%s.%s" .Release.Namespace .Release.Name) .Values.installationId | trunc 63 | trimSuffix "-" | trimSuffix "." -}}
{{- end -}}

{{/* The Secret and key METRICS_TOKEN comes from (web reads it; Prometheus sends it). */}}
{{- define "store-orchestrator.metricsTokenSecretName" -}}
{{- default (include "store-orchestrator.generatedSecretName" .) .Values.metrics.existingSecret -}}
{{- end -}}

{{- define "store-orchestrator.metricsTokenSecretKey" -}}
{{- ternary .Values.metrics.existingSecretTokenKey "metrics-token" (not (empty .Values.metrics.existingSecret)) -}}
{{- end -}}

{{- define "store-orchestrator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The chart's own Secret (random values made on first install), needed unless every credential
comes from an existing Secret. */}}
{{- define "store-orchestrator.generatedSecretName" -}}
{{- printf "%s-generated" (include "store-orchestrator.fullname" .) -}}
{{- end -}}

{{- define "store-orchestrator.needsGeneratedSecret" -}}
{{- if or (not .Values.secrets.existingSecret) .Values.postgres.enabled .Values.redis.enabled (not .Values.metrics.existingSecret) -}}true{{- end -}}
{{- end -}}

{{- define "store-orchestrator.postgresHost" -}}
{{- if .Values.postgres.enabled -}}
{{- printf "%s-postgres" (include "store-orchestrator.fullname" .) -}}
{{- else -}}
{{- .Values.externalDatabase.host -}}
{{- end -}}
{{- end -}}

{{- define "store-orchestrator.redisHost" -}}
{{- if .Values.redis.enabled -}}
{{- printf "%s-redis" (include "store-orchestrator.fullname" .) -}}
{{- else -}}
{{- .Values.externalRedis.host -}}
{{- end -}}
{{- end -}}

{{/*
When the migrations hook runs. pre-upgrade always: the database exists by then and the new schema
must be in place before new pods roll out. On the first install it can only run pre-install when
nothing it needs is made by this chart: a bundled Postgres or the generated Secret do not exist
before the release's resources are created, so then it runs post-install (after them; with
--wait, after they are ready) and the Job retries until Postgres accepts connections.
*/}}
{{- define "store-orchestrator.migrationsHook" -}}
{{- if or .Values.postgres.enabled .Values.redis.enabled (not .Values.secrets.existingSecret) -}}
post-install,pre-upgrade
{{- else -}}
pre-install,pre-upgrade
{{- end -}}
{{- end -}}

{{/* Fails rendering with a readable message when values contradict each other. */}}
{{- define "store-orchestrator.validate" -}}
{{- if not .Values.postgres.enabled -}}
{{- if not .Values.externalDatabase.host -}}
{{- fail "postgres.enabled=false needs externalDatabase.host" -}}
{{- end -}}
{{- if not .Values.externalDatabase.existingSecret -}}
{{- fail "postgres.enabled=false needs externalDatabase.existingSecret (a Secret with the database password)" -}}
{{- end -}}
{{- end -}}
{{- if and (not .Values.redis.enabled) (not .Values.externalRedis.host) -}}
{{- fail "redis.enabled=false needs externalRedis.host" -}}
{{- end -}}
{{- if and .Values.ingress.tls.enabled (not .Values.ingress.tls.clusterIssuer) (not .Values.ingress.tls.secretName) -}}
{{- fail "ingress.tls.enabled needs ingress.tls.clusterIssuer (cert-manager) or ingress.tls.secretName (your own certificate)" -}}
{{- end -}}
{{- end -}}

{{/* Environment of every orchestrator process: the contract in docs/CONVENTIONS.md. */}}
{{- define "store-orchestrator.env" -}}
{{- $fullname := include "store-orchestrator.fullname" . -}}
{{- $generated := include "store-orchestrator.generatedSecretName" . -}}
{{- $scheme := ternary "https" "http" .Values.ingress.tls.enabled -}}
{{- $hosts := list .Values.ingress.host (printf "%s-web" $fullname) (printf "%s-web.%s.svc" $fullname .Release.Namespace) "localhost" "$(POD_IP)" -}}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: DJANGO_DEBUG
  value: {{ ternary "true" "false" .Values.django.debug | quote }}
# Off: the app refuses to start without DJANGO_SECRET_KEY instead of using its development key.
- name: DJANGO_DEVELOPMENT
  value: "false"
# Session and CSRF cookies only over HTTPS when the dashboard is served over HTTPS.
- name: SECURE_COOKIES
  value: {{ ternary "true" "false" .Values.ingress.tls.enabled | quote }}
- name: DJANGO_SECRET_KEY
  valueFrom:
    secretKeyRef:
      {{- if .Values.secrets.existingSecret }}
      name: {{ .Values.secrets.existingSecret }}
      key: {{ .Values.secrets.secretKeyKey }}
      {{- else }}
      name: {{ $generated }}
      key: django-secret-key
      {{- end }}
- name: DJANGO_ALLOWED_HOSTS
  value: {{ concat $hosts .Values.django.extraAllowedHosts | join "," | quote }}
- name: DJANGO_CSRF_TRUSTED_ORIGINS
  value: {{ printf "%s://%s" $scheme .Values.ingress.host | quote }}
- name: POSTGRES_HOST
  value: {{ include "store-orchestrator.postgresHost" . | quote }}
- name: POSTGRES_PORT
  value: {{ ternary 5432 .Values.externalDatabase.port .Values.postgres.enabled | quote }}
- name: POSTGRES_DB
  value: {{ ternary .Values.postgres.database .Values.externalDatabase.database .Values.postgres.enabled | quote }}
- name: POSTGRES_USER
  value: {{ ternary .Values.postgres.username .Values.externalDatabase.username .Values.postgres.enabled | quote }}
- name: POSTGRES_PASSWORD
  valueFrom:
    secretKeyRef:
      {{- if .Values.postgres.enabled }}
      name: {{ $generated }}
      key: postgres-password
      {{- else }}
      name: {{ .Values.externalDatabase.existingSecret }}
      key: {{ .Values.externalDatabase.existingSecretPasswordKey }}
      {{- end }}
- name: REDIS_HOST
  value: {{ include "store-orchestrator.redisHost" . | quote }}
- name: REDIS_PORT
  value: {{ ternary 6379 .Values.externalRedis.port .Values.redis.enabled | quote }}
{{- if .Values.redis.enabled }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $generated }}
      key: redis-password
{{- else if .Values.externalRedis.existingSecret }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.externalRedis.existingSecret }}
      key: {{ .Values.externalRedis.existingSecretPasswordKey }}
{{- end }}
- name: STORE_BASE_DOMAIN
  value: {{ .Values.stores.baseDomain | quote }}
- name: STORE_INGRESS_CLASS
  value: {{ .Values.stores.ingressClass | quote }}
- name: STORE_INGRESS_NAMESPACES
  value: {{ join "," .Values.stores.ingressNamespaces | quote }}
- name: STORE_INGRESS_POD_LABELS
  value: {{ include "store-orchestrator.labelList" .Values.stores.ingressPodLabels | quote }}
- name: STORE_TLS_CLUSTER_ISSUER
  value: {{ .Values.stores.tlsClusterIssuer | quote }}
# Store URLs shown to users: https exactly when stores get certificates.
- name: STORE_URL_SCHEME
  value: {{ ternary "https" "http" (not (empty .Values.stores.tlsClusterIssuer)) | quote }}
- name: STORE_CHARTS_DIR
  value: /app/charts
- name: HELM_BIN
  value: /usr/local/bin/helm
- name: STORES_PER_USER
  value: {{ .Values.stores.perUser | quote }}
- name: RATELIMIT_WRITE
  value: {{ .Values.stores.rateLimitWrite | quote }}
- name: RATELIMIT_READ
  value: {{ .Values.stores.rateLimitRead | quote }}
- name: RATELIMIT_CREATE
  value: {{ .Values.stores.rateLimitCreate | quote }}
- name: RATELIMIT_LOGIN
  value: {{ .Values.stores.rateLimitLogin | quote }}
- name: TRUSTED_PROXY_COUNT
  value: {{ .Values.django.trustedProxyCount | quote }}
- name: LOG_FORMAT
  value: {{ .Values.django.logFormat | quote }}
- name: STORE_NAMESPACE_CLUSTERROLE
  value: {{ include "store-orchestrator.storeClusterRoleName" . | quote }}
- name: ORCHESTRATOR_SERVICE_ACCOUNT
  value: {{ printf "%s:%s" .Release.Namespace (include "store-orchestrator.serviceAccountName" .) | quote }}
- name: STORE_CREDENTIALS_CLUSTERROLE
  value: {{ include "store-orchestrator.credentialsClusterRoleName" . | quote }}
- name: WEB_SERVICE_ACCOUNT
  value: {{ printf "%s:%s" .Release.Namespace (include "store-orchestrator.webServiceAccountName" .) | quote }}
- name: ORCHESTRATOR_INSTALLATION_ID
  value: {{ include "store-orchestrator.installationId" . | quote }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* A map of labels as "key=value,key=value" (sorted), the form STORE_INGRESS_POD_LABELS takes. */}}
{{- define "store-orchestrator.labelList" -}}
{{- $pairs := list -}}
{{- range $key, $value := . }}{{ $pairs = append $pairs (printf "%s=%s" $key $value) }}{{ end -}}
{{- join "," $pairs -}}
{{- end }}

{{/* Pod-spec fields shared by web, worker, beat and the migrations Job. */}}
{{- define "store-orchestrator.podCommon" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Per-engine extra values files (stores.engineValues) for the long-running processes. Not for
the migrations Job: it may run pre-install, before this ConfigMap exists. */}}
{{- define "store-orchestrator.engineValuesEnv" -}}
{{- range $engine, $_ := .Values.stores.engineValues }}
- name: STORE_{{ upper $engine }}_VALUES
  value: /etc/store-orchestrator/engine-values/{{ $engine }}.yaml
{{- end }}
{{- end -}}

{{- define "store-orchestrator.engineValuesMount" -}}
{{- if .Values.stores.engineValues }}
- {name: engine-values, mountPath: /etc/store-orchestrator/engine-values, readOnly: true}
{{- end }}
{{- end -}}

{{- define "store-orchestrator.engineValuesVolume" -}}
{{- if .Values.stores.engineValues }}
- name: engine-values
  configMap:
    name: {{ include "store-orchestrator.fullname" . }}-engine-values
{{- end }}
{{- end -}}

{{/* Restarts the processes when the engine values change (they read the files at start). */}}
{{- define "store-orchestrator.engineValuesChecksum" -}}
{{- if .Values.stores.engineValues }}
checksum/engine-values: {{ toYaml .Values.stores.engineValues | sha256sum }}
{{- end }}
{{- end -}}
