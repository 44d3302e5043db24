// Preloaded by scripts/sanitize.sh: dlclose does nothing, so every shared object a
// process loads (Open MPI's and PMIx's components, flopwise's MPI plugin) stays mapped
// until exit. LeakSanitizer runs at exit and can only name the library of a frame whose
// module is still mapped; with this, every leak report names where it came from.
int dlclose(void* handle) {
  (void)handle;
  return 0;
}
