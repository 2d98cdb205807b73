/* Target of the fork+execve microbenchmark.  Built -static so the figure
 * is exec + process start-up, not the dynamic loader's file lookups. */
int main(void)
{
    return 0;
}
