/* Prints "next=<name>": what dlsym(RTLD_NEXT, …) finds when asked from a library loaded after the
 * quota library (see rtld_probe.c). Correct: "next=second". */
#include <stdio.h>

const char *probe_next(void);

int main(void)
{
    printf("next=%s\n", probe_next());
    return 0;
}
