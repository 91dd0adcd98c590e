package dev.loadstone.llama.tokenizer;

/**
 * Keeps this exported package non-empty in builds without the tokenizer; it holds nothing. Delete
 * it once the package has a public class.
 */
final class PackageMarker {
  private PackageMarker() {}
}
