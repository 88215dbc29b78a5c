{{/* Chart name, shortened to fit label values. */}}
{{- define "authgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Prefix of every object name. Object names add "-webhook" and the like, so it stays short. */}}
{{- define "authgate.fullname" -}}
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

{{/* Labels of every object. */}}
{{- define "authgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "authgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: authgate
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component; call with (dict "root" $ "component" "webhook"). */}}
{{- define "authgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "authgate.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of one component's objects; call like authgate.selectorLabels. */}}
{{- define "authgate.componentLabels" -}}
{{ include "authgate.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* An image reference from {repository, tag, digest}; call with (dict "root" $ "image" .Values.webhook.image). */}}
{{- define "authgate.image" -}}
{{- if .image.digest -}}
{{ .image.repository }}@{{ .image.digest }}
{{- else -}}
{{ .image.repository }}:{{ default .root.Chart.AppVersion .image.tag }}
{{- end }}
{{- end }}

{{- define "authgate.webhook.serviceAccountName" -}}
{{- if .Values.webhook.serviceAccount.create }}
{{- default (printf "%s-webhook" (include "authgate.fullname" .)) .Values.webhook.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.webhook.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "authgate.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (printf "%s-operator" (include "authgate.fullname" .)) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Fully qualified name of the webhook's checks Service: nginx resolves names without a search path. */}}
{{- define "authgate.webhook.serviceHost" -}}
{{ include "authgate.fullname" . }}-webhook.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}
{{- end }}

{{/* The base URL wired Ingresses send checks to (the operator's --webhook-url). */}}
{{- define "authgate.webhookURL" -}}
{{- if .Values.operator.webhookURL -}}
{{ .Values.operator.webhookURL }}
{{- else -}}
http://{{ include "authgate.webhook.serviceHost" . }}:{{ .Values.webhook.service.httpPort }}
{{- end }}
{{- end }}

{{/* The default login page (the operator's --login-url); empty when there is none. */}}
{{- define "authgate.loginURL" -}}
{{- if .Values.operator.loginURL -}}
{{ .Values.operator.loginURL }}
{{- else if and .Values.ingress.enabled .Values.ingress.host -}}
{{ if .Values.ingress.tls.enabled }}https{{ else }}http{{ end }}://{{ .Values.ingress.host }}/auth/login
{{- end }}
{{- end }}

{{/* Whether the webhook takes login clients' addresses from X-Forwarded-For. */}}
{{- define "authgate.trustForwardedFor" -}}
{{- if kindIs "bool" .Values.webhook.trustForwardedFor }}
{{- .Values.webhook.trustForwardedFor }}
{{- else }}
{{- .Values.ingress.enabled }}
{{- end }}
{{- end }}

{{/* Name of the Secret with the webhook's shared key. */}}
{{- define "authgate.webhook.secretKeySecret" -}}
{{- default (printf "%s-webhook-key" (include "authgate.fullname" .)) .Values.webhook.secretKey.existingSecret }}
{{- end }}

{{- define "authgate.redis.bundledName" -}}
{{ include "authgate.fullname" . }}-redis
{{- end }}

{{/* The restricted Pod Security profile: pod level. */}}
{{- define "authgate.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The restricted Pod Security profile: container level. */}}
{{- define "authgate.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Checks of value combinations that the schema cannot express; each failure names the values to change.
*/}}
{{- define "authgate.validate" -}}
{{- $w := .Values.webhook }}
{{- $r := .Values.redis }}
{{- if eq $w.store "memory" }}
{{- if or (gt (int $w.replicas) 1) $w.autoscaling.enabled }}
{{- fail "webhook.store=memory keeps sessions in one process, so it allows one replica only: set webhook.replicas=1 and webhook.autoscaling.enabled=false, or use webhook.store=redis" }}
{{- end }}
{{- else }}
{{- if $r.bundled.enabled }}
{{- if or $r.url $r.addrs }}
{{- fail "redis.url or redis.addrs names your own Redis while redis.bundled.enabled=true: set redis.bundled.enabled=false" }}
{{- end }}
{{- if ne $r.mode "standalone" }}
{{- fail (printf "redis.mode=%s needs your own Redis in redis.addrs: set redis.bundled.enabled=false" $r.mode) }}
{{- end }}
{{- if or $r.password.existingSecret $r.tls.enabled $r.username }}
{{- fail "redis.password, redis.username and redis.tls describe your own Redis; the bundled one has a generated password and no TLS: set redis.bundled.enabled=false, or leave them empty" }}
{{- end }}
{{- else }}
{{- if and $r.url $r.addrs }}
{{- fail "redis.url and redis.addrs both name a server: set one" }}
{{- end }}
{{- if eq $r.mode "standalone" }}
{{- if and (not $r.url) (ne (len $r.addrs) 1) }}
{{- fail "redis.mode=standalone needs redis.url (redis://host:6379/0) or exactly one address in redis.addrs, or redis.bundled.enabled=true" }}
{{- end }}
{{- else if eq $r.mode "sentinel" }}
{{- if or $r.url (not $r.addrs) (not $r.sentinelMaster) }}
{{- fail "redis.mode=sentinel needs the Sentinels in redis.addrs and the master's name in redis.sentinelMaster (not redis.url)" }}
{{- end }}
{{- else if eq $r.mode "cluster" }}
{{- if or $r.url (not $r.addrs) }}
{{- fail "redis.mode=cluster needs the nodes (or one configuration endpoint) in redis.addrs, not redis.url" }}
{{- end }}
{{- if ne (int $r.db) 0 }}
{{- fail "redis.mode=cluster: Redis Cluster has database 0 only; set redis.db=0" }}
{{- end }}
{{- end }}
{{- if and $r.sentinelMaster (ne $r.mode "sentinel") }}
{{- fail "redis.sentinelMaster is set: set redis.mode=sentinel too" }}
{{- end }}
{{- if and $r.sentinelPassword.existingSecret (ne $r.mode "sentinel") }}
{{- fail "redis.sentinelPassword is for redis.mode=sentinel" }}
{{- end }}
{{- if and $r.url (hasPrefix "redis://" $r.url) $r.tls.enabled }}
{{- fail "redis.tls.enabled=true with a redis:// url: use rediss:// (or turn redis.tls.enabled off)" }}
{{- end }}
{{- if and $r.url (regexMatch "^rediss?://[^/@]*:[^/@]*@" $r.url) }}
{{- fail "redis.url holds a password, which would end up in the pod spec: move it to a Secret and name it in redis.password.existingSecret" }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $w.grpc.tls.enabled (not $w.grpc.tls.secretName) }}
{{- fail "webhook.grpc.tls.enabled=true needs webhook.grpc.tls.secretName (a kubernetes.io/tls Secret)" }}
{{- end }}
{{- if and $w.autoscaling.enabled (gt (int $w.autoscaling.minReplicas) (int $w.autoscaling.maxReplicas)) }}
{{- fail "webhook.autoscaling.minReplicas is larger than webhook.autoscaling.maxReplicas" }}
{{- end }}
{{- if and .Values.ingress.enabled (not .Values.ingress.host) }}
{{- fail "ingress.enabled=true needs ingress.host (the login page's host, e.g. auth.example.com)" }}
{{- end }}
{{- if and .Values.ingress.tls.certManager.issuer .Values.ingress.tls.certManager.clusterIssuer }}
{{- fail "ingress.tls.certManager: set issuer or clusterIssuer, not both" }}
{{- end }}
{{- end }}
