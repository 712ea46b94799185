from filesapi.cli import main

main()
