from herbx.cli import main

main()
