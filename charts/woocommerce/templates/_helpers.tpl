{{/* Names, labels and shared pod fragments of the WooCommerce store chart. */}}

{{- define "woocommerce.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object name prefix; left short enough for "-wordpress"/"-setup-<rev>" suffixes. */}}
{{- define "woocommerce.fullname" -}}
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

{{- define "woocommerce.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that tie an object to its store (docs/CONVENTIONS.md). */}}
{{- define "woocommerce.storeLabels" -}}
store-orchestrator.io/store-id: {{ required "store.id is required" .Values.store.id | quote }}
store-orchestrator.io/engine: woocommerce
{{- end }}

{{/* Every object: standard labels + store labels. Call with (dict "ctx" $ "component" "x"). */}}
{{- define "woocommerce.labels" -}}
helm.sh/chart: {{ include "woocommerce.chart" .ctx }}
{{ include "woocommerce.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: store-orchestrator
{{ include "woocommerce.storeLabels" .ctx }}
{{- end }}

{{/* Immutable subset used in selectors. Call with (dict "ctx" $ "component" "x"). */}}
{{- define "woocommerce.selectorLabels" -}}
app.kubernetes.io/name: {{ include "woocommerce.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "woocommerce.secretName" -}}
{{- required "existingSecret is required: the orchestrator creates it before install" .Values.existingSecret }}
{{- end }}

{{- define "woocommerce.scheme" -}}
{{- if .Values.ingress.tls.enabled }}https{{ else }}http{{ end }}
{{- end }}

{{- define "woocommerce.url" -}}
{{ include "woocommerce.scheme" . }}://{{ required "store.host is required" .Values.store.host }}
{{- end }}

{{- define "woocommerce.adminEmail" -}}
{{- default (printf "admin@%s" .Values.store.host) .Values.admin.email }}
{{- end }}

{{- define "woocommerce.mariadbHost" -}}
{{ include "woocommerce.fullname" . }}-mariadb
{{- end }}

{{- define "woocommerce.image" -}}
{{ .repository }}:{{ .tag }}
{{- end }}

{{/* Pod-level security context shared by every pod (Pod Security "restricted"). */}}
{{- define "woocommerce.podSecurityContext" -}}
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
{{- define "woocommerce.scheduling" -}}
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
{{- define "woocommerce.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Environment shared by WordPress and the setup job: the official image's wp-config-docker.php
reads these at request time, so both see the same configuration. Secrets come from
existingSecret only.
*/}}
{{- define "woocommerce.wordpressEnv" -}}
{{- $secret := include "woocommerce.secretName" . -}}
- name: WORDPRESS_DB_HOST
  value: {{ include "woocommerce.mariadbHost" . | quote }}
- name: WORDPRESS_DB_NAME
  value: {{ .Values.mariadb.database | quote }}
- name: WORDPRESS_DB_USER
  value: {{ .Values.mariadb.username | quote }}
- name: WORDPRESS_DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: db-password
{{- range list "auth-key" "secure-auth-key" "logged-in-key" "nonce-key" "auth-salt" "secure-auth-salt" "logged-in-salt" "nonce-salt" }}
- name: WORDPRESS_{{ . | upper | replace "-" "_" }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: wordpress-{{ . }}
{{- end }}
- name: WORDPRESS_CONFIG_EXTRA
  value: |
    define('WP_HOME', {{ include "woocommerce.url" . | squote }});
    define('WP_SITEURL', {{ include "woocommerce.url" . | squote }});
    define('FS_METHOD', 'direct');
    define('DISALLOW_FILE_EDIT', true);
    define('WP_AUTO_UPDATE_CORE', false);
    {{- if .Values.cron.enabled }}
    define('DISABLE_WP_CRON', true);
    {{- end }}
    require_once {{ include "woocommerce.storeHttpPath" . | squote }};
    {{- with .Values.wordpress.configExtra }}
    {{- nindent 4 . }}
    {{- end }}
{{- end }}

{{/* Where every pod that runs WordPress code finds files/store-http.php (the <fullname>-php ConfigMap). */}}
{{- define "woocommerce.storeHttpPath" -}}
/etc/wordpress-store/store-http.php
{{- end }}

{{/*
How WordPress code in a pod makes HTTP requests (files/store-http.php): where requests to the
store's own URL go, and whether everything else is refused at once. Call with
(dict "ctx" $ "loopback" "http://...").
*/}}
{{- define "woocommerce.storeHttpEnv" -}}
- name: STORE_LOOPBACK_URL
  value: {{ .loopback | quote }}
- name: STORE_HTTP_BLOCK_EXTERNAL
  value: {{ ternary "false" "true" .ctx.Values.networkPolicy.wordpressEgress.enabled | quote }}
{{- end }}

{{/* The ConfigMap with files/store-http.php, as a volume and as a mount. */}}
{{- define "woocommerce.storeHttpVolume" -}}
- name: store-php
  configMap:
    name: {{ include "woocommerce.fullname" . }}-php
{{- end }}
{{- define "woocommerce.storeHttpMount" -}}
- name: store-php
  mountPath: {{ include "woocommerce.storeHttpPath" . | dir }}
  readOnly: true
{{- end }}

{{/*
Init container of the pods that run wp-cli (setup, cron): WP-CLI needs WordPress' files, so it
takes exactly the core of the WordPress image in use (no download) and its wp-config-docker.php as
wp-config.php. With "content" true it also adds the image's default themes/plugins where
wp-content lacks them (existing files are kept), as the WordPress container does on start.
Call with (dict "ctx" $ "resources" <resources> "content" true|false).
*/}}
{{- define "woocommerce.wordpressFilesInit" -}}
- name: wordpress-files
  image: {{ include "woocommerce.image" .ctx.Values.wordpress.image }}
  imagePullPolicy: {{ .ctx.Values.wordpress.image.pullPolicy }}
  command:
    - sh
    - -ec
    - |
      tar -C /usr/src/wordpress -cf - {{ if not .content }}--exclude=./wp-content {{ end }}. | tar -C /var/www/html -xf - --skip-old-files --no-overwrite-dir
      cp /usr/src/wordpress/wp-config-docker.php /var/www/html/wp-config.php
  securityContext:
    {{- include "woocommerce.containerSecurityContext" .ctx | nindent 4 }}
  resources:
    {{- toYaml .resources | nindent 4 }}
  volumeMounts:
    - name: html
      mountPath: /var/www/html
    - name: wp-content
      mountPath: /var/www/html/wp-content
{{- end }}

{{/* Pods that mount the ReadWriteOnce wp-content volume beside WordPress must share its node. */}}
{{- define "woocommerce.besideWordPress" -}}
{{- if .Values.setup.colocateWithWordPress }}
affinity:
  podAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "woocommerce.selectorLabels" (dict "ctx" . "component" "wordpress") | nindent 12 }}
{{- end }}
{{- end }}
