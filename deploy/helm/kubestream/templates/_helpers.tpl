{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "kubestream.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name; the release name alone when it already contains the chart name. */}}
{{- define "kubestream.fullname" -}}
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

{{/* Labels of every object; pass (dict "root" $ "component" "events-collector"). */}}
{{- define "kubestream.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{ include "kubestream.selectorLabels" . }}
app.kubernetes.io/part-of: kubestream
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{/* Selector labels (immutable in Deployments/DaemonSets: never add to them on upgrade). */}}
{{- define "kubestream.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubestream.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "kubestream.eventsName" -}}
{{- printf "%s-events" (include "kubestream.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubestream.logsName" -}}
{{- printf "%s-logs" (include "kubestream.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The Lease name: the events collector's config and its Role's resourceNames must agree. */}}
{{- define "kubestream.leaseName" -}}
{{- include "kubestream.eventsName" . }}
{{- end }}

{{- define "kubestream.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* kubestream.yaml of the events collector: shared config, then events.config, then what the
chart must control (component switches, lease name, paths and port its manifests rely on). */}}
{{- define "kubestream.eventsConfig" -}}
{{- $fixed := dict
  "events" (dict "enabled" true)
  "logs" (dict "enabled" false)
  "leader_election" (dict "enabled" .Values.events.leaderElection.enabled "lease_name" (include "kubestream.leaseName" .))
  "state" (dict "dir" "/var/lib/kubestream")
  "server" (dict "enabled" true "host" .Values.metrics.host "port" (int .Values.metrics.port)) -}}
{{- toYaml (mustMergeOverwrite (dict) (deepCopy .Values.config) (deepCopy .Values.events.config) $fixed) }}
{{- end }}

{{/* kubestream.yaml of the logs node agent. */}}
{{- define "kubestream.logsConfig" -}}
{{- $fixed := dict
  "events" (dict "enabled" false)
  "logs" (dict "enabled" true "pods_dir" "/var/log/pods" "containers_dir" "/var/log/containers")
  "state" (dict "dir" "/var/lib/kubestream")
  "server" (dict "enabled" true "host" .Values.metrics.host "port" (int .Values.metrics.port)) -}}
{{- toYaml (mustMergeOverwrite (dict) (deepCopy .Values.config) (deepCopy .Values.logs.config) $fixed) }}
{{- end }}

{{/* Environment common to both components. */}}
{{- define "kubestream.env" -}}
- name: KUBESTREAM_CLUSTER_NAME
  value: {{ .Values.clusterName | quote }}
- name: KUBESTREAM_S3_BUCKET
  value: {{ .Values.s3.bucket | quote }}
{{- with .Values.s3.region }}
- name: AWS_REGION
  value: {{ . | quote }}
{{- end }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Probes on the observability port (docs/operations.md). */}}
{{- define "kubestream.probes" -}}
livenessProbe:
  httpGet:
    path: /healthz
    port: metrics
  periodSeconds: 10
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: metrics
  periodSeconds: 5
{{- end }}

{{/* RBAC rules of the enrichment caches, derived from a component's effective config: only the
enabled ones are granted. The events collector (and an agent with both streams) caches the cluster
with list+watch informers; a node agent (logs only) follows its node: its pods and Node by
list+watch, owners and namespaces by one GET each, services by a list+watch per namespace that
has pods on the node (docs/design-enrich.md). */}}
{{- define "kubestream.enrichRules" -}}
{{- $e := default (dict) .enrich }}
{{- if ne (toString (dig "enabled" true $e)) "false" }}
{{- $logs := default (dict) .logs }}
{{- $nodeScoped := and (eq (toString (dig "enabled" false $logs)) "true") (eq (toString (dig "events" "enabled" true .)) "false") }}
{{- /* logs.metadata_source kubelet (node agent): pods from the kubelet's /pods, no pod watch;
       the node is still listed once for the kubelet's address unless logs.kubelet.url is set. */}}
{{- $kubelet := and $nodeScoped (eq (toString (dig "metadata_source" "apiserver" $logs)) "kubelet") }}
{{- $core := list }}
{{- $coreGet := list }}
{{- if not $kubelet }}{{ $core = append $core "pods" }}{{ end }}
{{- if or (ne (toString (dig "nodes" true $e)) "false") (and $kubelet (not (dig "kubelet" "url" "" $logs))) }}{{ $core = append $core "nodes" }}{{ end }}
{{- if ne (toString (dig "namespaces" true $e)) "false" }}{{ if $nodeScoped }}{{ $coreGet = append $coreGet "namespaces" }}{{ else }}{{ $core = append $core "namespaces" }}{{ end }}{{ end }}
{{- if ne (toString (dig "services" true $e)) "false" }}{{ $core = append $core "services" }}{{ end }}
{{- if $core }}
- apiGroups: [""]
  resources: {{ toJson $core }}
  verbs: ["list", "watch"]
{{- end }}
{{- if $coreGet }}
- apiGroups: [""]
  resources: {{ toJson $coreGet }}
  verbs: ["get"]
{{- end }}
{{- if $kubelet }}
# The kubelet authorizes GET /pods as nodes/pods (1.33+, KubeletFineGrainedAuthz) or nodes/proxy.
- apiGroups: [""]
  resources: ["nodes/pods", "nodes/proxy"]
  verbs: ["get"]
{{- end }}
{{- if ne (toString (dig "owners" true $e)) "false" }}
# Owner chains: only the intermediate owners (ReplicaSet, Job) are read; a node agent GETs the
# ones its pods name, the events collector caches them all.
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: {{ if $nodeScoped }}["get"]{{ else }}["list", "watch"]{{ end }}
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: {{ if $nodeScoped }}["get"]{{ else }}["list", "watch"]{{ end }}
{{- end }}
{{- end }}
{{- end }}
