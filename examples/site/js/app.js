// Proves JavaScript was served with a type the browser executes.
const clock = document.getElementById("clock");
clock.textContent = `The script ran at ${new Date().toLocaleTimeString()}.`;
