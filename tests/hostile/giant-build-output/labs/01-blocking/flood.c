#include "flood.h"
