/*
 * memseg: managed memory for data engines.
 * SPDX-License-Identifier: Apache-2.0
 *
 * memseg_jni.c: the JNI glue of java/memseg/Memseg.java. Each method is one C ABI call (two
 * for the text results, which are sized first); a failure throws memseg.MemsegException with
 * the status name and the calling thread's last error message. Build it as a shared library
 * named libmemseg_jni.so that links libmemseg (tests/jni.rs shows the command).
 */
#include <jni.h>
#include <stdlib.h>

#include "memseg.h"

/* Throws memseg.MemsegException for `status` unless it is MEMSEG_STATUS_OK; true if thrown. */
static int throw_unless_ok(JNIEnv *env, memseg_status status) {
  char message[512];
  jclass cls;
  jmethodID init;
  jstring name, text;
  jobject exception;
  if (status == MEMSEG_STATUS_OK) {
    return 0;
  }
  memseg_last_error_message(message, sizeof message);
  cls = (*env)->FindClass(env, "memseg/MemsegException");
  if (cls == NULL) {
    return 1; /* NoClassDefFoundError pending */
  }
  init = (*env)->GetMethodID(env, cls, "<init>", "(Ljava/lang/String;Ljava/lang/String;)V");
  name = (*env)->NewStringUTF(env, memseg_status_name(status));
  text = (*env)->NewStringUTF(env, message);
  if (init == NULL || name == NULL || text == NULL) {
    return 1; /* an OutOfMemoryError or NoSuchMethodError is pending */
  }
  exception = (*env)->NewObject(env, cls, init, name, text);
  if (exception != NULL) {
    (*env)->Throw(env, (jthrowable)exception);
  }
  return 1;
}

/* Throws java.lang.OutOfMemoryError for a buffer the glue could not allocate. */
static void throw_out_of_memory(JNIEnv *env, const char *what) {
  jclass cls = (*env)->FindClass(env, "java/lang/OutOfMemoryError");
  if (cls != NULL) {
    (*env)->ThrowNew(env, cls, what);
  }
}

/* A Java string made of the text a memseg call copies into a caller buffer; NULL if thrown. */
static jstring text_of(JNIEnv *env, memseg_status status, const char *text) {
  if (throw_unless_ok(env, status)) {
    return NULL;
  }
  return (*env)->NewStringUTF(env, text);
}

JNIEXPORT jint JNICALL Java_memseg_Memseg_version(JNIEnv *env, jclass cls) {
  (void)env;
  (void)cls;
  return (jint)memseg_version();
}

JNIEXPORT jlong JNICALL Java_memseg_Memseg_managerNew(JNIEnv *env, jclass cls, jlong total,
                                                      jboolean preallocate) {
  memseg_manager_config config;
  memseg_manager manager = {0};
  (void)cls;
  if (total < 0) {
    total = 0; /* refused below as a budget of no page */
  }
  config = memseg_manager_config_default((uint64_t)total);
  config.flags = preallocate ? MEMSEG_MANAGER_PREALLOCATE : 0;
  throw_unless_ok(env, memseg_manager_new(&config, &manager));
  return (jlong)manager.bits;
}

JNIEXPORT jstring JNICALL Java_memseg_Memseg_managerClose(JNIEnv *env, jclass cls,
                                                          jlong bits) {
  memseg_manager manager = {(uint64_t)bits};
  /* Closing happens once: a report longer than this is cut. */
  static const size_t capacity = 1 << 16;
  char *report = malloc(capacity);
  size_t len = 0;
  jstring result;
  (void)cls;
  if (report == NULL) {
    /* The manager is closed all the same; only its report is lost. */
    if (!throw_unless_ok(env, memseg_manager_close(manager, NULL, 0, &len))) {
      throw_out_of_memory(env, "no memory for the manager's leak report");
    }
    return NULL;
  }
  result = text_of(env, memseg_manager_close(manager, report, capacity, &len), report);
  free(report);
  return result;
}

JNIEXPORT jstring JNICALL Java_memseg_Memseg_managerStatsJson(JNIEnv *env, jclass cls,
                                                              jlong bits) {
  memseg_manager manager = {(uint64_t)bits};
  size_t len = 0;
  char *buf;
  jstring result;
  (void)cls;
  if (throw_unless_ok(env, memseg_manager_stats_json(manager, NULL, 0, &len))) {
    return NULL;
  }
  buf = malloc(len + 1);
  if (buf == NULL) {
    throw_out_of_memory(env, "no memory for the manager's stats");
    return NULL;
  }
  result = text_of(env, memseg_manager_stats_json(manager, buf, len + 1, &len), buf);
  free(buf);
  return result;
}

JNIEXPORT jlong JNICALL Java_memseg_Memseg_leaseOpen(JNIEnv *env, jclass cls, jlong manager_bits,
                                                     jstring name, jlong quota) {
  memseg_manager manager = {(uint64_t)manager_bits};
  memseg_lease lease = {0};
  const char *chars;
  (void)cls;
  if (name == NULL) {
    throw_unless_ok(env, memseg_lease_open(manager, NULL, 0, &lease));
    return 0;
  }
  chars = (*env)->GetStringUTFChars(env, name, NULL);
  if (chars == NULL) {
    return 0;
  }
  throw_unless_ok(env,
                  memseg_lease_open(manager, chars, quota < 0 ? 0 : (size_t)quota, &lease));
  (*env)->ReleaseStringUTFChars(env, name, chars);
  return (jlong)lease.bits;
}

JNIEXPORT jlong JNICALL Java_memseg_Memseg_leaseAllocate(JNIEnv *env, jclass cls, jlong bits) {
  memseg_lease lease = {(uint64_t)bits};
  memseg_segment page = {0};
  (void)cls;
  throw_unless_ok(env, memseg_lease_allocate(lease, &page));
  return (jlong)page.bits;
}

JNIEXPORT void JNICALL Java_memseg_Memseg_leaseRelease(JNIEnv *env, jclass cls, jlong lease_bits,
                                                       jlong page_bits) {
  memseg_lease lease = {(uint64_t)lease_bits};
  memseg_segment page = {(uint64_t)page_bits};
  (void)cls;
  throw_unless_ok(env, memseg_lease_release(lease, page));
}

JNIEXPORT void JNICALL Java_memseg_Memseg_leaseClose(JNIEnv *env, jclass cls, jlong bits) {
  memseg_lease lease = {(uint64_t)bits};
  (void)cls;
  throw_unless_ok(env, memseg_lease_close(lease, NULL));
}

JNIEXPORT jobject JNICALL Java_memseg_Memseg_buffer(JNIEnv *env, jclass cls, jlong bits) {
  memseg_segment segment = {(uint64_t)bits};
  uint8_t *ptr = NULL;
  size_t size = 0;
  (void)cls;
  if (throw_unless_ok(env, memseg_segment_raw(segment, &ptr, &size))) {
    return NULL;
  }
  return (*env)->NewDirectByteBuffer(env, ptr, (jlong)size);
}

JNIEXPORT jlong JNICALL Java_memseg_Memseg_getLongBE(JNIEnv *env, jclass cls, jlong bits,
                                                     jlong offset) {
  memseg_segment segment = {(uint64_t)bits};
  uint64_t value = 0;
  (void)cls;
  /* A negative offset is a huge one to the ABI: out of bounds, as it should be. */
  throw_unless_ok(env, memseg_segment_get_u64_be(segment, (size_t)offset, &value));
  return (jlong)value;
}
