/*
 * Version: MEMSEG_VERSION_MAJOR/MINOR/PATCH, MEMSEG_VERSION_STRING and MEMSEG_VERSION_NUMBER
 * agree with each other (the string is parsed), with the linked library (memseg_version(),
 * memseg_version_string()) and, when built by tests/c_tests.rs, with Cargo.toml
 * (MEMSEG_TEST_CARGO_VERSION). The macros also work in #if.
 */
#undef NDEBUG
#include <assert.h>

#include "memseg_test.h"

#if !defined(MEMSEG_VERSION_MAJOR) || !defined(MEMSEG_VERSION_MINOR) ||                     \
    !defined(MEMSEG_VERSION_PATCH) || !defined(MEMSEG_VERSION_STRING) ||                    \
    !defined(MEMSEG_VERSION_NUMBER)
#error "memseg.h must define every MEMSEG_VERSION_ macro"
#endif

/* Usable by the preprocessor, as a consumer would gate on a version. */
#if MEMSEG_VERSION_NUMBER !=                                                                \
    MEMSEG_VERSION_MAJOR * 1000000 + MEMSEG_VERSION_MINOR * 1000 + MEMSEG_VERSION_PATCH
#error "MEMSEG_VERSION_NUMBER does not match its parts"
#endif
#if MEMSEG_VERSION_MINOR > 999 || MEMSEG_VERSION_PATCH > 999 || MEMSEG_VERSION_MINOR < 0 || \
    MEMSEG_VERSION_PATCH < 0 || MEMSEG_VERSION_MAJOR < 0
#error "MEMSEG_VERSION_MINOR and _PATCH must fit three digits"
#endif

/* Parses "MAJOR.MINOR.PATCH" (digits only, no sign, nothing after) into three numbers. */
static bool parse_version(const char *text, unsigned long parts[3]) {
  const char *p = text;
  int i;
  for (i = 0; i < 3; i++) {
    unsigned long value = 0;
    const char *start = p;
    while (*p >= '0' && *p <= '9') {
      value = value * 10 + (unsigned long)(*p - '0');
      p++;
    }
    if (p == start || (p - start > 1 && *start == '0')) {
      return false;
    }
    parts[i] = value;
    if (i < 2) {
      if (*p != '.') {
        return false;
      }
      p++;
    }
  }
  return *p == '\0';
}

static void test_parser(void) {
  unsigned long parts[3];
  CHECK(parse_version("1.22.333", parts));
  CHECK(parts[0] == 1 && parts[1] == 22 && parts[2] == 333);
  CHECK(!parse_version("1.2", parts));
  CHECK(!parse_version("1.2.3-beta", parts));
  CHECK(!parse_version("1..3", parts));
  CHECK(!parse_version("01.2.3", parts));
  CHECK(!parse_version("", parts));
}

static void test_header_macros_agree(void) {
  unsigned long parts[3] = {0, 0, 0};
  /* A string literal, usable in concatenation. */
  static const char literal[] = "memseg " MEMSEG_VERSION_STRING;
  CHECK(strncmp(literal, "memseg ", 7) == 0);
  CHECK(parse_version(MEMSEG_VERSION_STRING, parts));
  CHECK_EQ(parts[0], MEMSEG_VERSION_MAJOR);
  CHECK_EQ(parts[1], MEMSEG_VERSION_MINOR);
  CHECK_EQ(parts[2], MEMSEG_VERSION_PATCH);
  CHECK_EQ(MEMSEG_VERSION_NUMBER, parts[0] * 1000000 + parts[1] * 1000 + parts[2]);
}

static void test_library_agrees_with_header(void) {
  const char *text = memseg_version_string();
  unsigned long parts[3] = {0, 0, 0};
  CHECK(text != NULL);
  CHECK_STR(text, MEMSEG_VERSION_STRING);
  CHECK_EQ(memseg_version(), MEMSEG_VERSION_NUMBER);
  CHECK(parse_version(text, parts));
  CHECK_EQ(memseg_version(), parts[0] * 1000000 + parts[1] * 1000 + parts[2]);
  /* Static: the same pointer every time. */
  CHECK(memseg_version_string() == text);
}

static void test_cargo_version(void) {
#ifdef MEMSEG_TEST_CARGO_VERSION
  CHECK_STR(MEMSEG_VERSION_STRING, MEMSEG_TEST_CARGO_VERSION);
  CHECK_STR(memseg_version_string(), MEMSEG_TEST_CARGO_VERSION);
  printf("version %s matches Cargo.toml\n", MEMSEG_TEST_CARGO_VERSION);
#else
  printf("MEMSEG_TEST_CARGO_VERSION not defined (built outside cargo): not compared\n");
#endif
}

int main(void) {
  RUN(test_parser);
  RUN(test_header_macros_agree);
  RUN(test_library_agrees_with_header);
  RUN(test_cargo_version);
  printf("test_version: all passed\n");
  return 0;
}
