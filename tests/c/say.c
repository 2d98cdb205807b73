/* Prints its compiled-in word: tells apart the program inside the sandbox
 * from a same-named one outside it. */
#include <stdio.h>
int main(void) { puts(WORD); return 0; }
