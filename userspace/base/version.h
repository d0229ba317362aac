/* agtrace's version: what the User-Agent of every exporter, the OTLP instrumentation scope and
 * ECS agent.version say. The build may set it (-DAGT_VERSION=...). */
#ifndef AGT_VERSION_H
#define AGT_VERSION_H
#ifndef AGT_VERSION
#define AGT_VERSION "0.1.0"
#endif
#define AGT_USER_AGENT "agtrace/" AGT_VERSION
/* The ECS version the Elasticsearch documents follow (ecs.version). */
#define AGT_ECS_VERSION "8.11.0"
#endif
