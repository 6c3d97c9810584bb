from hookpost.cli import main

main()
