from neuroseg.cli.main import main

main()
