/**
 * A program that uses Loadstone as its users do: the published {@code loadstone-core} jar on the
 * module path, through the packages its module exports.
 */
module dev.loadstone.example.consumer {
  requires dev.loadstone.core;
}
