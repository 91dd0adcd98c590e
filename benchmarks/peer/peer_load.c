/*
 * The peers' way of loading a safetensors file, as a same-machine baseline for `loadstone bench`:
 * map the file, find each tensor's bytes from the header, and copy every tensor into its own
 * malloc'd buffer -- what the Rust safetensors crate's users do (`tensor.data().to_vec()`), and
 * what from_blob + copy_ into freshly allocated libtorch tensors amounts to on the CPU.
 *
 *   cc -O2 -pthread -o peer_load peer_load.c
 *   ./peer_load FILE [THREADS] [RUNS]
 *
 * Two figures per run, each over the same tensors:
 *   end_to_end: malloc + memcpy into memory never touched before (what a program pays to get
 *               its weights: the kernel zero-fills each new page on first write);
 *   touched:    memcpy into buffers written once beforehand (the copy alone, as the
 *               `runs_seconds` of `loadstone bench` measure it).
 * Tensors are dealt round-robin to THREADS threads (default 1: the crate's loop is sequential).
 * The file is read through once first so that it is in the page cache (its pages stay mapped, as
 * they do in the crate's users). Prints one JSON object, with the peak resident set (VmHWM).
 *
 * Reading the header: only each tensor's "data_offsets":[begin,end] pair is needed; the parser
 * looks for that key and trusts the file (this is a benchmark, not a validator).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  uint64_t begin, end;
} span;

typedef struct {
  const uint8_t *data;
  span *spans;
  size_t count;
  int threads, index, touch_first;
  uint8_t **buffers;
} job;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void *copy_tensors(void *argument) {
  job *j = argument;
  for (size_t i = j->index; i < j->count; i += j->threads) {
    size_t n = j->spans[i].end - j->spans[i].begin;
    if (!j->touch_first) {
      j->buffers[i] = malloc(n ? n : 1);
    }
    memcpy(j->buffers[i], j->data + j->spans[i].begin, n);
  }
  return NULL;
}

static double run(const uint8_t *data, span *spans, size_t count, int threads, int touch_first) {
  uint8_t **buffers = calloc(count, sizeof *buffers);
  if (touch_first) {
    for (size_t i = 0; i < count; i++) {
      size_t n = spans[i].end - spans[i].begin;
      buffers[i] = malloc(n ? n : 1);
      memset(buffers[i], 1, n);
    }
  }
  pthread_t ids[64];
  job jobs[64];
  double start = now();
  for (int t = 0; t < threads; t++) {
    jobs[t] = (job){data, spans, count, threads, t, touch_first, buffers};
    pthread_create(&ids[t], NULL, copy_tensors, &jobs[t]);
  }
  for (int t = 0; t < threads; t++) {
    pthread_join(ids[t], NULL);
  }
  double seconds = now() - start;
  for (size_t i = 0; i < count; i++) {
    free(buffers[i]);
  }
  free(buffers);
  return seconds;
}

static int by_seconds(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE [THREADS] [RUNS]\n", argv[0]);
    return 2;
  }
  int threads = argc > 2 ? atoi(argv[2]) : 1;
  int runs = argc > 3 ? atoi(argv[3]) : 5;
  if (threads < 1 || threads > 64 || runs < 1 || runs > 100) {
    fprintf(stderr, "THREADS is 1..64, RUNS 1..100\n");
    return 2;
  }
  int fd = open(argv[1], O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < 8) {
    perror(argv[1]);
    return 1;
  }
  const uint8_t *file = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (file == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  uint64_t header_length;
  memcpy(&header_length, file, 8);
  if (header_length > (uint64_t)st.st_size - 8) {
    fprintf(stderr, "%s: bad header length\n", argv[1]);
    return 1;
  }
  char *header = strndup((const char *)file + 8, header_length);
  const uint8_t *data = file + 8 + header_length;
  size_t capacity = 1024, count = 0;
  span *spans = malloc(capacity * sizeof *spans);
  uint64_t total = 0;
  for (char *p = header; (p = strstr(p, "\"data_offsets\"")) != NULL; p++) {
    unsigned long long begin, end;
    if (sscanf(p, "\"data_offsets\" : [ %llu , %llu ]", &begin, &end) != 2) {
      continue;
    }
    if (count == capacity) {
      spans = realloc(spans, (capacity *= 2) * sizeof *spans);
    }
    spans[count++] = (span){begin, end};
    total += end - begin;
  }
  volatile uint8_t sink = 0;
  for (off_t i = 0; i < st.st_size; i += 4096) {
    sink += file[i];
  }
  double end_to_end[100], touched[100];
  run(data, spans, count, threads, 1); /* warm-up */
  for (int r = 0; r < runs; r++) {
    end_to_end[r] = run(data, spans, count, threads, 0);
    touched[r] = run(data, spans, count, threads, 1);
  }
  qsort(end_to_end, runs, sizeof(double), by_seconds);
  qsort(touched, runs, sizeof(double), by_seconds);
  double e = end_to_end[runs / 2], t = touched[runs / 2];
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  printf("{\"path\":\"%s\",\"tensors\":%zu,\"bytes\":%llu,\"threads\":%d,\"runs\":%d,"
         "\"end_to_end_seconds\":%.6f,\"end_to_end_gbps\":%.3f,"
         "\"touched_seconds\":%.6f,\"touched_gbps\":%.3f,\"peak_rss_bytes\":%lld}\n",
         argv[1], count, (unsigned long long)total, threads, runs, e, total / e / 1e9, t, total / t / 1e9,
         (long long)usage.ru_maxrss * 1024);
  return 0;
}
