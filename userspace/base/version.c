#include "base/version.h"
#include "agt_version.h"

const char agt_version[] = AGT_VERSION;
const char agt_revision[] = AGT_REVISION;
const char agt_user_agent[] = "agtrace/" AGT_VERSION;
