package dev.loadstone.store;

/** How {@link VarStore#load} fills a variable from a checkpoint tensor. */
public enum LoadMode {
  /**
   * Copy each tensor once from the file's mapping into the variable's own memory, converting to
   * the variable's dtype on the way. The variables outlive the checkpoint.
   */
  COPY,
  /**
   * Make the variable the mapped bytes themselves: no copy, read-only, equal dtype required. The
   * variable is readable only while the checkpoint stays open.
   */
  ALIAS
}
