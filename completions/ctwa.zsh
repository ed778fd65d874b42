
#compdef ctwa

_ctwa_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _CTWA_COMPLETE=complete_zsh ctwa)
}

compdef _ctwa_completion ctwa

