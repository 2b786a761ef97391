/* Prints the SVE vector length in bits of the CPU it runs on (0 without SVE).
 * ci/cross_aarch64.sh runs it under each emulated CPU to check that qemu
 * gives the length it was asked for. */
#include <stdio.h>
#include <sys/prctl.h>

#ifndef PR_SVE_GET_VL
#define PR_SVE_GET_VL 51
#endif
#ifndef PR_SVE_VL_LEN_MASK
#define PR_SVE_VL_LEN_MASK 0xffff
#endif

int main(void) {
  const int vl = prctl(PR_SVE_GET_VL);
  printf("%d\n", vl < 0 ? 0 : (vl & PR_SVE_VL_LEN_MASK) * 8);
  return 0;
}
