/** The {@code loadstone} command line: inspect, verify and the other commands. */
module dev.loadstone.cli {
  requires dev.loadstone.core;
  requires dev.loadstone.llama;
  requires com.fasterxml.jackson.core;
  requires dev.loadstone.torch;
}
