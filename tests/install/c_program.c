/* Built against an installed hakmem (pkg-config or CMake): malloc and the
 * hak_ API are hakmem's. Prints "ok VERSION". */
#include <hakmem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  char* blocks[1000];
  for (int i = 0; i < 1000; ++i) {
    blocks[i] = malloc((size_t)(i * 7 + 1));
    if (blocks[i] == NULL || !hak_owns(blocks[i])) {
      fprintf(stderr, "c_program: block %d is not hakmem's\n", i);
      return 1;
    }
    memset(blocks[i], i & 0xff, (size_t)(i * 7 + 1));
  }
  void* big = malloc(1 << 20);
  if (!hak_owns(big)) {
    fprintf(stderr, "c_program: the large block is not hakmem's\n");
    return 1;
  }
  free(big);
  for (int i = 0; i < 1000; ++i) free(blocks[i]);
  if (hak_check() != 0) return 1;
  printf("ok %s\n", hak_version());
  return 0;
}
