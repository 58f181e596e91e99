{{/* Names and labels. */}}
{{- define "clipmod.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "clipmod.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one role; call with (dict "root" $ "role" "api"). */}}
{{- define "clipmod.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{- define "clipmod.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "clipmod.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "clipmod.secretName" -}}
{{- default (printf "%s-secrets" (include "clipmod.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* The image of one role; the GPU image for inference when gpu.enabled. */}}
{{- define "clipmod.image" -}}
{{- $values := index .root.Values .role -}}
{{- $repository := $values.image.repository -}}
{{- if and (eq .role "inference") .root.Values.inference.gpu.enabled -}}
{{- $repository = .root.Values.inference.image.cudaRepository -}}
{{- end -}}
{{- $tag := default .root.Chart.AppVersion .root.Values.image.tag -}}
{{- if .root.Values.image.registry -}}
{{- printf "%s/%s:%s" (trimSuffix "/" .root.Values.image.registry) $repository $tag -}}
{{- else -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
REDIS_URL in clipmod's form (shared/redis/redis-url.ts): redis[s][+cluster|+sentinel]://[:password@]hosts[/path].
The password is the REDIS_PASSWORD variable, expanded by Kubernetes ($(VAR) in env values).
*/}}
{{- define "clipmod.redisUrl" -}}
{{- $redis := .Values.redis -}}
{{- $scheme := ternary "rediss" "redis" $redis.tls -}}
{{- if ne $redis.mode "standalone" -}}
{{- $scheme = printf "%s+%s" $scheme $redis.mode -}}
{{- end -}}
{{- $auth := ternary ":$(REDIS_PASSWORD)@" "" (ne $redis.passwordSecret.name "") -}}
{{- $path := printf "/%d" (int $redis.db) -}}
{{- if eq $redis.mode "sentinel" -}}
{{- $path = printf "/%s/%d" $redis.sentinelPrimaryName (int $redis.db) -}}
{{- else if eq $redis.mode "cluster" -}}
{{- $path = "" -}}
{{- end -}}
{{- printf "%s://%s%s%s" $scheme $auth (join "," $redis.hosts) $path -}}
{{- end -}}

{{/* The BullMQ list KEDA measures: <prefix>:<queue>:wait (shared/queue/job-catalog.ts names the queue). */}}
{{- define "clipmod.waitingListKey" -}}
{{- printf "%s:inference:wait" .Values.redis.prefix -}}
{{- end -}}
