from hvci.cli import main

main()
