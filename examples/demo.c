#include "baracuda/baracuda.h"
#include <stdio.h>
int main(void) { printf("demo: being written\n"); return 0; }
