/* preload/: wires config → sampler → uploader together inside the host
 * process: the constructor/destructor, the agent thread, fork handling, the
 * pthread_create interposer and the public API in include/cgprof.h. */
#ifndef CGPROF_PRELOAD_H
#define CGPROF_PRELOAD_H

#include "../config/config.h"

#define CGPROF_VERSION "0.1.0"

#endif
