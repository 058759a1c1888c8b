/* placeholder until the preload lands */
#include "preload.h"
