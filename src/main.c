#include "borg/error.h"
int main(void) { return 0; }
